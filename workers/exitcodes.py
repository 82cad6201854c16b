"""Every named exit code of taskrail's processes: workers, work-horses, the supervisor and the CLI."""

RET_OK = 0  # stopped on request, drained cleanly; health: healthy
RET_ERROR = 1  # an unexpected error stopped the process
RET_CONFIG = 2  # bad settings or profile: nothing was started
RET_REDIS_DOWN = 3  # health: Redis does not answer
RET_NO_HEARTBEAT = 4  # health: Redis answers, but the worker's heartbeat has expired
RET_CHILD_ERROR = 70  # a forked work-horse could not hand its outcome back to the worker
RET_RECYCLE = 75  # a worker passed max_jobs or max_memory_mb and wants a replacement
RET_GAVE_UP = 76  # the supervisor passed a queue's restart intensity and stopped everything
RET_UNCLEAN = 77  # the supervisor drained, but some jobs had to be requeued at the deadline
RET_CHAOS_LOST = 78  # taskrail chaos: a job was lost or completed more than once

__all__ = [
    "RET_CHAOS_LOST",
    "RET_CHILD_ERROR",
    "RET_CONFIG",
    "RET_ERROR",
    "RET_GAVE_UP",
    "RET_NO_HEARTBEAT",
    "RET_OK",
    "RET_RECYCLE",
    "RET_REDIS_DOWN",
    "RET_UNCLEAN",
]
