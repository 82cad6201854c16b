"""What supervisors share through Redis: scale overrides (``taskrail scale``) and each supervisor's state.

Overrides live in ``taskrail:scale`` (queue -> count, for every supervisor) and
``taskrail:scale:node:<node>`` (for one machine; wins over the shared one). Each change bumps
``taskrail:scale:version``; supervisors poll that counter every second, re-read the overrides when
it moves and publish the version they applied in ``taskrail:supervisor:<node>`` (a JSON document
with a short TTL, listed in the set ``taskrail:supervisors``), so ``taskrail scale`` can wait for them.
An override pins a queue's count (autoscale pauses for it) until ``taskrail scale --reset``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from tasks.core import keys

__all__ = [
    "SCALE",
    "SCALE_NODE",
    "SCALE_VERSION",
    "STATE_TTL_S",
    "SUPERVISOR",
    "SUPERVISORS",
    "clear_state",
    "publish_state",
    "read_overrides",
    "read_scale_version",
    "read_supervisors",
    "request_scale",
    "reset_scale",
]

SCALE = keys.SCALE
SCALE_NODE = keys.SCALE_NODE
SCALE_VERSION = keys.SCALE_VERSION
SUPERVISORS = keys.SUPERVISORS
SUPERVISOR = keys.SUPERVISOR
STATE_TTL_S = 5


def request_scale(conn: redis.Redis, counts: Mapping[str, int], node: str | None = None) -> int:
    """Pin queues at ``counts`` (on every supervisor, or on ``node``); return the new version."""
    key = SCALE_NODE.format(node) if node else SCALE
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={q: int(n) for q, n in counts.items()})
        pipe.incr(SCALE_VERSION)
        return int(pipe.execute()[-1])


def reset_scale(conn: redis.Redis, queues: Iterable[str] = (), node: str | None = None) -> int:
    """Unpin ``queues`` (all when empty): they follow the profile and autoscale again.

    With ``node`` only that node's pins go; without, the pins for every supervisor and every node's own.
    """
    targets = [SCALE_NODE.format(node)] if node else [SCALE, *conn.scan_iter(match=SCALE_NODE.format("*"))]
    names = list(queues)
    with conn.pipeline(transaction=True) as pipe:
        for key in targets:
            if names:
                pipe.hdel(key, *names)
            else:
                pipe.delete(key)
        pipe.incr(SCALE_VERSION)
        return int(pipe.execute()[-1])


def read_scale_version(conn: redis.Redis) -> int:
    return int(conn.get(SCALE_VERSION) or 0)


def read_overrides(conn: redis.Redis, node: str) -> tuple[int, dict[str, int]]:
    """The current version and the pinned counts that apply to ``node``."""
    with conn.pipeline(transaction=True) as pipe:
        pipe.get(SCALE_VERSION)
        pipe.hgetall(SCALE)
        pipe.hgetall(SCALE_NODE.format(node))
        version, shared, own = pipe.execute()
    counts = {k.decode(): int(v) for k, v in shared.items()}
    counts.update({k.decode(): int(v) for k, v in own.items()})
    return int(version or 0), counts


def publish_state(conn: redis.Redis, node: str, state: Mapping[str, Any]) -> None:
    with conn.pipeline(transaction=False) as pipe:
        pipe.set(SUPERVISOR.format(node), json.dumps(state), ex=STATE_TTL_S)
        pipe.sadd(SUPERVISORS, node)
        pipe.execute()


def clear_state(conn: redis.Redis, node: str) -> None:
    with conn.pipeline(transaction=False) as pipe:
        pipe.delete(SUPERVISOR.format(node))
        pipe.srem(SUPERVISORS, node)
        pipe.execute()


def read_supervisors(conn: redis.Redis) -> list[dict[str, Any]]:
    """The state of every live supervisor, by node name; forgets the ones whose state expired."""
    nodes = sorted(n.decode() for n in conn.smembers(SUPERVISORS))
    if not nodes:
        return []
    states = []
    for node, raw in zip(nodes, conn.mget([SUPERVISOR.format(n) for n in nodes]), strict=True):
        if raw is None:
            conn.srem(SUPERVISORS, node)
        else:
            states.append(json.loads(raw))
    return states
