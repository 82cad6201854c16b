"""The consumer side: the RQ worker class and what runs beside it. Importing it does no work."""

from workers.worker import Worker

__all__ = ["Worker"]
