"""Named exit codes of worker processes and the supervisor."""

RET_OK = 0  # stopped on request, drained cleanly
RET_ERROR = 1  # an unexpected error stopped the process
RET_CONFIG = 2  # bad settings or profile: nothing was started
RET_RECYCLE = 75  # a worker passed max_jobs or max_memory_mb and wants a replacement
RET_GAVE_UP = 76  # the supervisor passed a queue's restart intensity and stopped everything
RET_UNCLEAN = 77  # the supervisor drained, but some jobs had to be requeued at the deadline

__all__ = ["RET_CONFIG", "RET_ERROR", "RET_GAVE_UP", "RET_OK", "RET_RECYCLE", "RET_UNCLEAN"]
