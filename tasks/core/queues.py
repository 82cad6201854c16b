"""Queue-level controls: pause and resume one queue, and the priority order inside a queue.

Pausing is cluster-wide: workers skip a paused queue in their CLAIM script (workers/claim.py), so
enqueues still succeed and running jobs finish, but no new job of that queue starts until it is
resumed. ``taskrail pause QUEUE`` and ``taskrail resume QUEUE`` call these functions.

Priorities (0 to 9, lower runs sooner; a job without one counts as ``DEFAULT_PRIORITY``) are kept
as one FIFO list per priority, so every enqueue and claim is O(1) whatever the backlog: jobs of the
default priority in RQ's list ``rq:queue:<q>``, those of priority ``n`` in ``rq:queue:<q>:p<n>``,
which RQ's tools (``rq info``, rq-dashboard) list and count as a queue named ``<q>:p<n>``. Workers
take the lists in priority order; ``taskrail:levels:<q>`` names the other priorities that have
jobs, so a claim reads one small sorted set, not ten lists (tasks/core/lua/includes/queue_push.lua).
``waiting`` counts a queue's jobs across its lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis

from config.errors import ConnectionFailed
from tasks.core import keys, validate
from tasks.core.client import Client, default_client
from tasks.core.keys import DEFAULT_PRIORITY, LEVELS

__all__ = ["DEFAULT_PRIORITY", "LEVELS", "is_paused", "pause", "paused_queues", "resume", "waiting"]


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


def waiting(conn: redis.Redis, queues: Iterable[str]) -> dict[str, int]:
    """Jobs waiting per queue, every priority's list counted: one round trip, whatever the backlog."""
    names = list(queues)
    with conn.pipeline(transaction=False) as pipe:
        for q in names:
            for key in keys.waiting_lists(q):
                pipe.llen(key)
        counts = pipe.execute()
    width = len(counts) // len(names) if names else 0
    return {q: sum(counts[i * width : (i + 1) * width]) for i, q in enumerate(names)}


def _client(client: Client | None) -> Client:
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
