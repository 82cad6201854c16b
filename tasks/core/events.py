"""Lifecycle events: read or follow the bounded ``taskrail:events:<queue>`` streams, like BullMQ's QueueEvents.

Producers and workers append one entry per step of a job's life (see ``EVENT_KINDS``); each stream
is trimmed to about ``events_maxlen`` entries, so a busy queue never fills the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tasks.core import keys
from tasks.core.client import Client, default_client

__all__ = ["EVENT_KINDS", "Event", "follow_events", "read_events"]

EVENT_KINDS = (
    "enqueued",
    "started",
    "progress",
    "retried",
    "completed",
    "failed",
    "stopped",
    "stalled",
    "recovered",
    "requeued",
    "interrupted",
    "revoked",
    "dropped",
)
REDISCOVER_S = 2.0  # how often a follower without a fixed queue list looks for new queues


@dataclass(frozen=True)
class Event:
    """One step of a job's life, as read from its queue's stream."""

    id: str  # the stream entry id, "<ms>-<seq>": orders events of one queue
    queue: str
    kind: str  # one of EVENT_KINDS
    job_id: str
    task: str = ""
    worker: str = ""
    duration_ms: float | None = None  # completed, failed, retried
    error: str = ""  # the exception type of failed and retried
    percent: float | None = None  # progress
    stalls: int | None = None  # stalled: how often the job has stalled so far
    extra: tuple[tuple[str, str], ...] = ()  # fields this version does not know

    @property
    def at(self) -> float:
        """Unix time the event was written (from the entry id)."""
        return int(self.id.split("-", 1)[0]) / 1000

    @classmethod
    def from_entry(cls, queue: str, entry_id: bytes | str, raw: dict[bytes, bytes]) -> Event:
        fields = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
        known = {"event", "job", "task", "worker", "ms", "error", "percent", "stalls"}
        return cls(
            id=entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
            queue=queue,
            kind=fields.get("event", ""),
            job_id=fields.get("job", ""),
            task=fields.get("task", ""),
            worker=fields.get("worker", ""),
            duration_ms=_number(fields.get("ms")),
            error=fields.get("error", ""),
            percent=_number(fields.get("percent")),
            stalls=int(fields["stalls"]) if fields.get("stalls", "").isdigit() else None,
            extra=tuple(sorted((k, v) for k, v in fields.items() if k not in known)),
        )


def read_events(queues: Sequence[str] | None = None, *, client: Client | None = None,
                last: int | None = None) -> list[Event]:  # fmt: skip
    """The events now stored for ``queues`` (default: every queue), oldest first; ``last`` keeps the newest N."""
    conn = _client(client).redis
    found: list[Event] = []
    for queue in queues or _queues(conn):
        stream = keys.EVENTS.format(queue)
        entries = conn.xrange(stream) if last is None else list(reversed(conn.xrevrange(stream, count=last)))
        found += [Event.from_entry(queue, entry_id, raw) for entry_id, raw in entries]
    found.sort(key=_order)
    return found if last is None else found[-last:]


def follow_events(queues: Sequence[str] | None = None, *, client: Client | None = None, from_start: bool = False,
                  idle_timeout_s: float | None = None, block_s: float = 1.0) -> Iterator[Event]:  # fmt: skip
    """Yield events as they are written (with ``from_start``, the stored ones first).

    "Now" is when this function is called: later events are all yielded, even ones written before
    the first ``next()``. Blocks on all the streams at once (XREAD BLOCK). Without ``queues``,
    follows every queue, including ones that appear later. Stops after ``idle_timeout_s`` without
    an event (None: never).
    """
    conn = _client(client).redis
    cursors = {q: "0-0" if from_start else _tail(conn, q) for q in (queues or _queues(conn))}
    return _follow(conn, cursors, discover=not queues, idle_timeout_s=idle_timeout_s, block_s=block_s)


def _follow(conn: Any, cursors: dict[str, str], *, discover: bool, idle_timeout_s: float | None,
            block_s: float) -> Iterator[Event]:  # fmt: skip
    next_discovery = time.monotonic() + REDISCOVER_S
    last_event = time.monotonic()
    block = block_s if idle_timeout_s is None else min(block_s, idle_timeout_s)
    while True:
        if discover and time.monotonic() >= next_discovery:
            next_discovery = time.monotonic() + REDISCOVER_S
            for queue in _queues(conn):
                cursors.setdefault(queue, "0-0")  # a queue that appeared while following: all of it is new
        batch: list[Event] = []
        if cursors:
            streams = {keys.EVENTS.format(q): cursor for q, cursor in cursors.items()}
            for stream, entries in conn.xread(streams, count=500, block=max(1, int(block * 1000))) or []:
                queue = keys.key_part(keys.EVENTS, stream.decode())
                batch += [Event.from_entry(queue, entry_id, raw) for entry_id, raw in entries]
                cursors[queue] = batch[-1].id
        else:
            time.sleep(block)  # nothing to follow yet: wait for a queue to appear
        if batch:
            last_event = time.monotonic()
            yield from sorted(batch, key=_order)
        elif idle_timeout_s is not None and time.monotonic() - last_event >= idle_timeout_s:
            return


def _client(client: Client | None) -> Client:
    if client is not None:
        return client
    return default_client()


def _queues(conn: Any) -> list[str]:
    """Every queue with an events stream."""
    return sorted(
        {keys.key_part(keys.EVENTS, key.decode()) for key in conn.scan_iter(keys.EVENTS.format("*"), count=500)}
    )


def _tail(conn: Any, queue: str) -> str:
    """The id of the newest entry of a queue's stream, so following starts after it."""
    newest = conn.xrevrange(keys.EVENTS.format(queue), count=1)
    return newest[0][0].decode() if newest else "0-0"


def _order(event: Event) -> tuple[int, int, str]:
    ms, _, seq = event.id.partition("-")
    return int(ms), int(seq or 0), event.queue


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None
