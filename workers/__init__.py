"""The consumer side: the RQ worker class and what runs beside it. Importing it does no work."""

from workers.shadowing import check_not_shadowed

check_not_shadowed()  # a user's tasks.py or config.py beside the worker: say so before it breaks an import

from workers.metrics import build_registry, duration_percentiles  # noqa: E402
from workers.supervisor import Supervisor  # noqa: E402
from workers.worker import Worker  # noqa: E402

__all__ = ["Supervisor", "Worker", "build_registry", "duration_percentiles"]
