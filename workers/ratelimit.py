"""Global rate limits and concurrency caps, enforced inside the CLAIM script on the server's clock.

Rate limits are exact sliding windows: a sorted set per limited thing (task, task and key, queue,
worker) holds one member per start in the last period, scored by the server's time. A job may
start when every window it belongs to has room. Concurrency caps are sorted sets of the job ids
holding a slot; the settle step of the worker's FINISH (and the leader's REAP, for dead workers)
releases the slot, so a crashed worker never holds one for longer than its heartbeat lives.

Key names:

- ``taskrail:rl:t:<task>[:<key>]``   starts of a task (per limit key) in its window
- ``taskrail:rl:q:<queue>``          starts from a queue (profile ``rate_limit``)
- ``taskrail:rl:w:<worker>``         starts by one worker process (``TASKRAIL_WORKER_RATE_LIMIT``)
- ``taskrail:cc:<task>[:<key>]``     job ids running under a concurrency cap
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from config.errors import ConfigError
from config.settings import Settings
from tasks.core.options import RateLimit, parse_rate_limit

__all__ = ["LIMITS_LUA", "RELEASE_LUA", "ClaimPolicy", "policy_for"]

# Helpers for CLAIM. Locals the caller declares first: snow (server time, s), room and waits (tables).
# window_room(key, limit, period): how many more starts fit now; when none, waits[key] is the
#   number of seconds until the next one does.
# slot_room(key, cap): free concurrency slots; members whose job is no longer running (deleted
#   or settled without release) are pruned when the cap looks full.
LIMITS_LUA = """
local function window_room(key, limit, period)
  local r = room[key]
  if r ~= nil then return r end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', snow - period)
  local n = redis.call('ZCARD', key)
  r = limit - n
  if r <= 0 then
    r = 0
    local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    waits[key] = math.max(tonumber(e[2]) + period - snow, 0.001)
  end
  room[key] = r
  return r
end

local function window_take(key, period, member)
  room[key] = room[key] - 1
  redis.call('ZADD', key, snow, member)
  redis.call('PEXPIRE', key, math.ceil(period * 1000) + 1000)
end

local function slot_room(key, cap)
  local r = room[key]
  if r ~= nil then return r end
  local n = redis.call('ZCARD', key)
  if n >= cap then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if redis.call('HGET', 'rq:job:' .. m, 'status') ~= 'started' then redis.call('ZREM', key, m) end
    end
    n = redis.call('ZCARD', key)
  end
  r = cap - n
  room[key] = r
  return r
end

local function slot_take(key, id, jkey)
  room[key] = room[key] - 1
  redis.call('ZADD', key, snow, id)
  redis.call('HSET', jkey, 'tr_slot', key)
end
"""

# For the settle step (workers/lua.py): give back the concurrency slot a job holds, if any, and
# wake a worker of its queue, since a job waiting for that slot may start now.
RELEASE_LUA = """
local function release_slot(id, q)
  local jkey = 'rq:job:' .. id
  local slot = redis.call('HGET', jkey, 'tr_slot')
  if slot then
    redis.call('ZREM', slot, id)
    redis.call('HDEL', jkey, 'tr_slot')
    wake(q)  -- from QUEUE_PUSH_LUA, which the settle script includes first
  end
end
"""


@dataclass(frozen=True)
class ClaimPolicy:
    """How one worker orders its queues and which queue and worker limits it applies."""

    weighted: bool
    weights: dict[str, int]
    queue_limits: dict[str, tuple[int, float]]
    worker_limit: tuple[int, float] | None

    def queue_args(self, queues: list[str]) -> list[str | int | float]:
        """Per queue, in order: weight, limit count (0 = none), limit period."""
        args: list[str | int | float] = []
        for queue in queues:
            count, period = self.queue_limits.get(queue, (0, 0.0))
            args += [self.weights.get(queue, 1), count, period]
        return args


def policy_for(settings: Settings) -> ClaimPolicy:
    """The claim policy of ``settings`` (parsed once per distinct value).

    Raises:
        ConfigError: a malformed weight or rate, naming the setting and the fix.
    """
    s = settings
    return _policy(s.mode, s.queue_weights, s.queue_rate_limits, s.worker_rate_limit)


@functools.lru_cache(maxsize=8)
def _policy(mode: str, weights: tuple[str, ...], rates: tuple[str, ...], worker: str | None) -> ClaimPolicy:
    if mode not in ("strict", "weighted"):
        raise ConfigError(f"TASKRAIL_MODE must be 'strict' or 'weighted', got {mode!r}")
    weight_of = {q: _weight(q, v) for q, v in _pairs("TASKRAIL_QUEUE_WEIGHTS", weights)}
    limits = {
        q: _rate("TASKRAIL_QUEUE_RATE_LIMITS", q, v).window() for q, v in _pairs("TASKRAIL_QUEUE_RATE_LIMITS", rates)
    }
    worker_limit = _rate("TASKRAIL_WORKER_RATE_LIMIT", "worker", worker).window() if worker else None
    return ClaimPolicy(mode == "weighted", weight_of, limits, worker_limit)


def _pairs(setting: str, items: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{setting}: expected items like 'email=20/s' or 'critical=6', got {item!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _weight(queue: str, text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"TASKRAIL_QUEUE_WEIGHTS: {queue}: weight must be a positive integer, got {text!r}")
    return int(text)


def _rate(setting: str, name: str, text: str) -> RateLimit:
    try:
        return parse_rate_limit(text)
    except ConfigError as exc:
        raise ConfigError(f"{setting}: {name}: {exc}") from exc
