"""Queue-level controls: pause and resume one queue, and the priority order inside a queue.

Pausing is cluster-wide: workers skip a paused queue in their CLAIM script (workers/claim.py), so
enqueues still succeed and running jobs finish, but no new job of that queue starts until it is
resumed. ``taskrail pause QUEUE`` and ``taskrail resume QUEUE`` call these functions.

Priorities (0 to 9, lower runs sooner; a job without one counts as ``DEFAULT_PRIORITY``) are kept
by inserting each job at its place in RQ's list ``rq:queue:<q>``, so the list still holds every
waiting job, in the order they will run, and workers simply pop its head. The index
``taskrail:prio:<q>`` (job id -> priority) of jobs with a priority other than the default exists
only while such jobs wait; it gives the place, and the insert costs O(jobs on the shorter side).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import redis

from config.errors import ConnectionFailed
from tasks.core import keys, validate

if TYPE_CHECKING:  # tasks/core/client.py imports this module for QUEUE_PUSH_LUA
    from tasks.core.client import Client

__all__ = ["DEFAULT_PRIORITY", "PRIORITY_INDEX", "QUEUE_PUSH_LUA", "is_paused", "pause", "paused_queues", "resume"]

DEFAULT_PRIORITY = 5
PRIORITY_INDEX = "taskrail:prio:{}"

# wake(q): a wake-up token. make_ready(q, id, now_text): status queued, into the queue, wake.
# push_waiting(qkey, id, prio): put a waiting job into its queue list behind every job of the same
# or a lower number and before every job of a higher one (prio -1 = no priority). Plain jobs while
# no prioritized job waits are a single RPUSH; otherwise the shorter side of the insertion point is
# lifted off and pushed back (O(jobs on that side), where LINSERT would scan from the head).
QUEUE_PUSH_LUA = f"""
local function wake(q)  -- one token for a worker blocked on this queue; the list stays short
  redis.call('LPUSH', 'taskrail:wake:' .. q, '1')
  redis.call('LTRIM', 'taskrail:wake:' .. q, 0, 999)
end

local function push_back(qkey, cmd, items)
  local reversed = {{}}
  for i = #items, 1, -1 do reversed[#reversed + 1] = items[i] end
  for i = 1, #reversed, 1000 do
    redis.call(cmd, qkey, unpack(reversed, i, math.min(i + 999, #reversed)))
  end
end

local function push_waiting(qkey, id, prio)
  local pkey = 'taskrail:prio:' .. string.sub(qkey, 10)
  local p = tonumber(prio) or -1
  if p < 0 then p = {DEFAULT_PRIORITY} end
  if p == {DEFAULT_PRIORITY} and redis.call('EXISTS', pkey) == 0 then
    redis.call('RPUSH', qkey, id)
    return
  end
  local len = redis.call('LLEN', qkey)
  local pos = redis.call('ZCOUNT', pkey, '-inf', p)
  if p >= {DEFAULT_PRIORITY} then pos = pos + math.max(len - redis.call('ZCARD', pkey), 0) end
  if p ~= {DEFAULT_PRIORITY} then redis.call('ZADD', pkey, p, id) end
  if pos >= len then
    redis.call('RPUSH', qkey, id)
  elseif pos == 0 then
    redis.call('LPUSH', qkey, id)
  elseif len - pos <= pos then
    local behind = redis.call('RPOP', qkey, len - pos)
    redis.call('RPUSH', qkey, id)
    push_back(qkey, 'RPUSH', behind)
  else
    local ahead = redis.call('LPOP', qkey, pos)
    redis.call('LPUSH', qkey, id)
    push_back(qkey, 'LPUSH', ahead)
  end
end

local function make_ready(q, id, now_text)  -- a waiting job enters its queue in priority order
  local jkey = 'rq:job:' .. id
  redis.call('HSET', jkey, 'status', 'queued', 'enqueued_at', now_text)
  push_waiting('rq:queue:' .. q, id, redis.call('HGET', jkey, 'tr_priority'))
  wake(q)
end
"""


def pause(queue: str, client: Client | None = None) -> bool:
    """Stop workers taking jobs from ``queue`` (enqueues still succeed); True if it was running.

    Raises:
        ConfigError: ``queue`` is not a valid queue name.
        ConnectionFailed: Redis cannot be reached.
    """
    conn, maxlen = _conn(queue, client), _client(client).settings.events_maxlen
    with _wrapped(queue), conn.pipeline(transaction=True) as pipe:
        pipe.sadd(keys.PAUSED, queue)
        pipe.xadd(keys.EVENTS.format(queue), {"event": "paused", "queue": queue}, maxlen=maxlen, approximate=True)
        added = pipe.execute()[0]
    return bool(added)


def resume(queue: str, client: Client | None = None) -> bool:
    """Let workers take jobs from ``queue`` again and wake them; True if it was paused.

    Raises:
        ConfigError: ``queue`` is not a valid queue name.
        ConnectionFailed: Redis cannot be reached.
    """
    conn, maxlen = _conn(queue, client), _client(client).settings.events_maxlen
    with _wrapped(queue), conn.pipeline(transaction=True) as pipe:
        pipe.srem(keys.PAUSED, queue)
        pipe.lpush(keys.WAKE.format(queue), "1")
        pipe.ltrim(keys.WAKE.format(queue), 0, 999)
        pipe.xadd(keys.EVENTS.format(queue), {"event": "resumed", "queue": queue}, maxlen=maxlen, approximate=True)
        removed = pipe.execute()[0]
    return bool(removed)


def is_paused(queue: str, client: Client | None = None) -> bool:
    """Whether workers currently skip ``queue``."""
    conn = _conn(queue, client)
    with _wrapped(queue):
        return bool(conn.sismember(keys.PAUSED, queue))


def paused_queues(client: Client | None = None) -> set[str]:
    """Names of every paused queue."""
    conn = _client(client).redis
    with _wrapped("*"):
        return {name.decode() for name in conn.smembers(keys.PAUSED)}


def _client(client: Client | None) -> Client:
    from tasks.core.client import default_client

    return client or default_client()


def _conn(queue: str, client: Client | None) -> redis.Redis:
    validate.queue_name(queue)
    return _client(client).redis


@contextmanager
def _wrapped(queue: str) -> Iterator[None]:
    """Turn a lost connection into ConnectionFailed, naming the queue."""
    try:
        yield
    except redis.ConnectionError as exc:
        raise ConnectionFailed(f"queue {queue}: cannot reach Redis ({exc}); check REDIS_URL") from exc
