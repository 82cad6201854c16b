"""Redis key names shared by producers, workers, server-side scripts and tools: the one place that names keys.

RQ's own keys are used as RQ writes them, so `rq info`, `rq requeue` and rq-dashboard see taskrail
jobs; taskrail's additions live under ``taskrail:``. Scripts get the same names through the generated
include ``keys`` (``lua_keys()``): a table ``K`` of prefixes, so a script builds ``K.job .. id``.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = [
    "CANCELED",
    "CLAIMS",
    "CONTROL_REPLY",
    "DASHBOARD_FAILURES",
    "DASHBOARD_SESSION",
    "DEFAULT_PRIORITY",
    "DEFERRED",
    "DEPENDENCIES",
    "DEPENDENTS",
    "DONE",
    "EVENTS",
    "FAILED",
    "FINISHED",
    "FLOW",
    "FLOW_MEMBERS",
    "GROUP",
    "HEARTBEAT",
    "JOB",
    "LEADER",
    "LEVELS",
    "PAUSED",
    "PERIODIC",
    "QUEUE",
    "QUEUES",
    "QUEUE_LEVEL",
    "RECORD_FIELDS",
    "RESULTS",
    "REVOKE",
    "RQ_EXECUTION",
    "RQ_EXECUTIONS",
    "RQ_QUEUE_WORKERS",
    "RQ_RATE_ALLOWED",
    "RQ_RATE_KEYS",
    "RQ_RATE_LIMIT",
    "RQ_RATE_WAITING",
    "RQ_SUSPENDED",
    "RQ_WORKER",
    "RQ_WORKERS",
    "RQ_WORKER_EXECUTIONS",
    "SCALE",
    "SCALE_NODE",
    "SCALE_VERSION",
    "SCHEDULED",
    "STARTED",
    "STATS",
    "SUPERVISOR",
    "SUPERVISORS",
    "TASKS",
    "TASK_STATS",
    "UNIQUE",
    "WAITERS",
    "WAKE",
    "WORKERS",
    "key_part",
    "lua_keys",
    "queue_name",
    "waiting_lists",
]

# RQ's keys (RQ 3.0 layout).
QUEUES = "rq:queues"
QUEUE = "rq:queue:{}"
QUEUE_LEVEL = (
    "rq:queue:{}:p{}"  # list: a queue's waiting jobs of one priority other than the default (RQ queue <q>:p<n>)
)
JOB = "rq:job:{}"
DEPENDENTS = "rq:job:{}:dependents"  # set: ids of jobs waiting on this one
DEPENDENCIES = "rq:job::{}:dependencies"  # set: ids this job waits on (RQ's own spelling, double colon)
RESULTS = "rq:results:{}"
STARTED = "rq:wip:{}"
FINISHED = "rq:finished:{}"
FAILED = "rq:failed:{}"
SCHEDULED = "rq:scheduled:{}"
CANCELED = "rq:canceled:{}"
DEFERRED = "rq:deferred:{}"
RQ_WORKERS = "rq:workers"  # set of worker keys
RQ_WORKER = "rq:worker:{}"  # hash per worker
RQ_QUEUE_WORKERS = "rq:workers:{}"  # set of worker keys per queue
RQ_RATE_KEYS = "rq:rl-keys"  # set: the RateLimit keys in use
RQ_RATE_LIMIT = "rq:rl:{}"  # hash per RateLimit key: its concurrency (RQ 3's RateLimitRegistry)
RQ_RATE_ALLOWED = "rq:rl:{}:allowed"  # zset: ids holding a slot of that key (queued or started)
RQ_RATE_WAITING = "rq:rl:{}:rate_limited"  # zset: ids waiting for a slot (status rate_limited), oldest first
RQ_SUSPENDED = "rq:suspended"  # flag: rq suspend (rq.suspension); while it exists no worker claims
# RQ 3's execution records (rq/executions.py), written by workers.Worker only for a job still running after
# EXECUTION_AFTER_S (workers/executions.py); taskrail's execution id is the worker's name.
RQ_EXECUTION = "rq:execution:{}:{}"  # hash per job and execution: id, job_id, created_at, last_heartbeat, worker_name
RQ_EXECUTIONS = "rq:executions:{}"  # zset per job: its execution ids (RQ's ExecutionRegistry)
RQ_WORKER_EXECUTIONS = "rq:worker:{}:executions"  # set per worker: job_id:execution_id of its running executions

# taskrail's keys.
WORKERS = "taskrail:workers"  # set: names of live taskrail workers
HEARTBEAT = "taskrail:hb:{}"  # string with a short TTL, per worker
CLAIMS = "taskrail:claims:{}"  # hash: job id -> queue, the jobs a worker holds
WAKE = "taskrail:wake:{}"  # list of tokens: a worker blocks on it while its queues are empty
EVENTS = "taskrail:events:{}"  # bounded stream of lifecycle events, per queue
PAUSED = "taskrail:paused"  # set of paused queue names
LEVELS = "taskrail:levels:{}"  # sorted set per queue: the priorities (not the default) whose QUEUE_LEVEL list has jobs
STATS = "taskrail:stats:{}:{}"  # hash per queue and minute: completed, failed
TASK_STATS = "taskrail:taskstats:{}"  # hash per task: counters and duration buckets
TASKS = "taskrail:tasks"  # set: names of the tasks that have a TASK_STATS hash (metrics read it, never SCAN)
WAITERS = "taskrail:waiters:{}"  # someone blocks in AsyncResult.get() on this job
DONE = "taskrail:done:{}"  # list a finished job pushes to when it has waiters
REVOKE = "taskrail:revoke:{}"  # flag: stop this running job
UNIQUE = "taskrail:unique:{}"  # string: id of the live job holding a unique key
FLOW = "taskrail:flow:{}"  # counter: members of a flow that have not ended yet
FLOW_MEMBERS = "taskrail:flow:{}:members"  # set: every member of a flow
GROUP = "taskrail:group:{}"  # list: a group's member result ids, in input order
RATE_TASK = "taskrail:rl:t:{}"  # sliding window of starts per task (and limit key)
RATE_QUEUE = "taskrail:rl:q:{}"  # sliding window of starts per queue
RATE_WORKER = "taskrail:rl:w:{}"  # sliding window of starts per worker
# string per worker, JSON {task: tr_rate}: its runtime rate limits (taskrail control rate_limit), read by each claim
RATE_OVERRIDES = "taskrail:rl:o:{}"
CONCURRENCY = "taskrail:cc:{}"  # job ids holding a concurrency slot, per task (and limit key)
WEIGHTS = "taskrail:wrr:{}"  # hash per worker: weighted round robin credit per queue
LEADER = "taskrail:leader"  # the elected scheduler and recovery leader
CONTROL_REPLY = "taskrail:reply:{}"  # list per inspect/control request: the workers' answers
PERIODIC = "taskrail:periodic"  # hash: periodic entry -> last fire time
SCALE = "taskrail:scale"  # hash: cluster-wide scale overrides
SCALE_NODE = "taskrail:scale:node:{}"  # hash: one node's scale overrides
SCALE_VERSION = "taskrail:scale:version"  # counter bumped on every scale change
SUPERVISORS = "taskrail:supervisors"  # set of supervisor node names
SUPERVISOR = "taskrail:supervisor:{}"  # one supervisor's published state

DASHBOARD_SESSION = "taskrail:dashboard:session:{}"  # string with the session's TTL, per SHA-256 of a session id
DASHBOARD_FAILURES = "taskrail:dashboard:failures:{}:{}"  # counter per client address and minute, short TTL
# Numbers the scripts and Python must agree on (also in the generated include).
RECORD_FIELDS = 14  # values per job in a FINISH record (workers/runner.py Outcome.record)
DEFAULT_PRIORITY = 5  # what a job without a priority counts as

# The names scripts see: K.<name>. Order is the generated text's order.
_LUA_KEYS = {
    "queues": QUEUES, "queue": QUEUE, "queue_level": QUEUE_LEVEL, "job": JOB, "dependents": DEPENDENTS, "dependencies": DEPENDENCIES,
    "results": RESULTS, "wip": STARTED, "finished": FINISHED, "failed": FAILED, "scheduled": SCHEDULED,
    "canceled": CANCELED, "deferred": DEFERRED, "rq_workers": RQ_WORKERS, "rq_worker": RQ_WORKER,
    "rq_queue_workers": RQ_QUEUE_WORKERS, "heartbeat": HEARTBEAT, "claims": CLAIMS, "workers": WORKERS, "wake": WAKE,
    "events": EVENTS, "levels": LEVELS, "stats": STATS, "taskstats": TASK_STATS, "tasks": TASKS, "waiters": WAITERS,
    "done": DONE, "revoke": REVOKE, "flow": FLOW, "flow_members": FLOW_MEMBERS, "rate_task": RATE_TASK,
    "rate_queue": RATE_QUEUE, "rate_worker": RATE_WORKER, "rate_overrides": RATE_OVERRIDES, "concurrency": CONCURRENCY, "weights": WEIGHTS,
    "rq_rate": RQ_RATE_LIMIT, "rq_rate_keys": RQ_RATE_KEYS, "rq_rate_allowed": RQ_RATE_ALLOWED, "rq_rate_waiting": RQ_RATE_WAITING,
    "rq_execution": RQ_EXECUTION, "rq_executions": RQ_EXECUTIONS, "rq_worker_executions": RQ_WORKER_EXECUTIONS,
    "rq_suspended": RQ_SUSPENDED,
}  # fmt: skip
_LUA_CONSTANTS = {"RECORD_FIELDS": RECORD_FIELDS, "DEFAULT_PRIORITY": DEFAULT_PRIORITY}


def queue_name(queue_key: str) -> str:
    """The queue a member of ``rq:queues`` belongs to: ``rq:queue:email`` -> ``email``, and its list of one
    priority ``rq:queue:email:p3`` -> ``email`` too."""
    name = key_part(QUEUE, queue_key)
    base, sep, level = name.rpartition(":p")
    return base if sep and level.isdigit() else name


def waiting_lists(queue: str) -> list[str]:
    """The keys of every list that holds ``queue``'s waiting jobs, in run order: priorities 0 to 9, RQ's
    own list ``rq:queue:<queue>`` in the default priority's place."""
    return [
        QUEUE.format(queue) if p == DEFAULT_PRIORITY else QUEUE_LEVEL.format(queue, p) for p in range(10)
    ]  # validate's 0-9


def key_part(template: str, key: str) -> str:
    """What the placeholder of a one-part template stands for in ``key``: ``key_part(FAILED, "rq:failed:email")``
    is ``email``."""
    prefix, _, suffix = template.partition("{}")
    return key.removeprefix(prefix).removesuffix(suffix)


def lua_keys(used: Collection[str] | None = None) -> str:
    """The generated include ``keys``: ``K`` (only the ``used`` names, or all) and the shared constants, as Lua.

    A key named ``prefix{}`` becomes its prefix (``K.job .. id``); a constant key its whole name
    (``K.queues``); a key with its part inside (``rq:job:{}:dependents``) a function of its parts
    (``K.dependents(id)``).

    Raises:
        KeyError: ``used`` names a key scripts do not know.
    """
    unknown = set(used or ()) - set(_LUA_KEYS)
    if unknown:
        raise KeyError(f"scripts name unknown keys {sorted(unknown)}: add them to _LUA_KEYS in tasks/core/keys.py")
    lines = ["-- Generated from tasks/core/keys.py by the loader: key names and shared constants.", "local K = {"]
    for name, template in _LUA_KEYS.items():
        if used is not None and name not in used:
            continue
        parts = template.split("{}")
        if len(parts) == 1 or (len(parts) == 2 and parts[1] == ""):
            lines.append(f"  {name} = {_lua_string(parts[0])},")
        else:
            params = [f"p{i}" for i in range(1, len(parts))]
            pieces = [_lua_string(parts[0])]
            for param, part in zip(params, parts[1:], strict=True):
                pieces += [param, _lua_string(part)]
            body = " .. ".join(piece for piece in pieces if piece != "''")
            lines.append(f"  {name} = function({', '.join(params)}) return {body} end,")
    lines.append("}")
    lines += [f"local {name} = {value}" for name, value in _LUA_CONSTANTS.items()]
    return "\n".join(lines) + "\n"


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
