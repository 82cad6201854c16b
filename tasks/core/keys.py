"""Redis key names shared by producers, workers and tools.

RQ's own keys are used as RQ writes them, so `rq info`, `rq requeue` and rq-dashboard see taskrail
jobs; taskrail's additions live under ``taskrail:``.
"""

from __future__ import annotations

__all__ = [
    "CANCELED",
    "CLAIMS",
    "DASHBOARD_FAILURES",
    "DASHBOARD_SESSION",
    "DONE",
    "EVENTS",
    "FAILED",
    "FINISHED",
    "HEARTBEAT",
    "JOB",
    "PAUSED",
    "QUEUE",
    "QUEUES",
    "RESULTS",
    "SCHEDULED",
    "STARTED",
    "STATS",
    "TASK_STATS",
    "WAITERS",
    "WAKE",
    "WORKERS",
    "queue_name",
]

# RQ's keys (RQ 3.0 layout).
QUEUES = "rq:queues"
QUEUE = "rq:queue:{}"
JOB = "rq:job:{}"
RESULTS = "rq:results:{}"
STARTED = "rq:wip:{}"
FINISHED = "rq:finished:{}"
FAILED = "rq:failed:{}"
SCHEDULED = "rq:scheduled:{}"
CANCELED = "rq:canceled:{}"

# taskrail's keys.
WORKERS = "taskrail:workers"  # set: names of live taskrail workers
HEARTBEAT = "taskrail:hb:{}"  # string with a short TTL, per worker
CLAIMS = "taskrail:claims:{}"  # hash: job id -> queue, the jobs a worker holds
WAKE = "taskrail:wake:{}"  # list of tokens: a worker blocks on it while its queues are empty
EVENTS = "taskrail:events:{}"  # bounded stream of lifecycle events, per queue
PAUSED = "taskrail:paused"  # set of paused queue names
STATS = "taskrail:stats:{}:{}"  # hash per queue and minute: completed, failed
TASK_STATS = "taskrail:taskstats:{}"  # hash per task: counters and duration buckets
WAITERS = "taskrail:waiters:{}"  # someone blocks in AsyncResult.get() on this job
DONE = "taskrail:done:{}"  # list a finished job pushes to when it has waiters
DASHBOARD_SESSION = "taskrail:dashboard:session:{}"  # string with the session's TTL, per SHA-256 of a session id
DASHBOARD_FAILURES = "taskrail:dashboard:failures:{}:{}"  # counter per client address and minute, short TTL


def queue_name(queue_key: str) -> str:
    """``rq:queue:email`` -> ``email``."""
    return queue_key.rsplit(":", 1)[-1]
