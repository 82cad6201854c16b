"""The consumer side: the RQ worker class and what runs beside it. Importing it does no work."""

from workers.metrics import build_registry, duration_percentiles
from workers.supervisor import Supervisor
from workers.worker import Worker

__all__ = ["Supervisor", "Worker", "build_registry", "duration_percentiles"]
