"""The consumer side: the RQ worker class and what runs beside it. Importing it does no work."""

from workers.supervisor import Supervisor
from workers.worker import Worker

__all__ = ["Supervisor", "Worker"]
