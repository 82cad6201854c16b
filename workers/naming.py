"""Worker names a restart can always use.

Workers are named ``<host>.<queue>.<index>``; Kubernetes and Compose restart a killed container in
place, under the same name. A SIGKILLed (OOM-killed, liveness-killed) worker leaves its state
behind: RQ's ``rq:worker:<name>`` for up to ``worker_ttl + 60`` s, during which RQ refuses the name
("There exists an active worker named ..."), and taskrail's claims, which the elected leader hands
back by name once the heartbeat lapses. Reusing the name before that would hide those claims, so a
start whose name is still held takes a per-start suffix, ``<name>-<4 hex>``, as the supervisor does.
``taskrail health --this-host`` matches names by their ``<host>.`` prefix, so it finds either. The
leader's recovery (tasks/core/lua/reap.lua) deletes the dead worker's RQ registration, so ``rq
info`` lists it no longer than the heartbeat TTL.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

import redis

from tasks.core import keys

__all__ = ["free_name", "name_taken", "take_free_name"]

log = logging.getLogger("taskrail.worker")


def name_taken(conn: redis.Redis, name: str) -> bool:
    """True while a worker of this name is registered or a dead one's claims await recovery."""
    with conn.pipeline(transaction=False) as pipe:
        pipe.sismember(keys.WORKERS, name)
        pipe.exists(keys.CLAIMS.format(name))
        pipe.exists(keys.RQ_WORKER.format(name))
        pipe.hexists(keys.RQ_WORKER.format(name), "death")
        member, claims, registered, dead = pipe.execute()
    return bool(member or claims or (registered and not dead))


def free_name(conn: redis.Redis, name: str) -> str:
    """``name``, or ``name-<4 hex>`` while ``name`` is still held (by a live or an unrecovered dead worker)."""
    candidate = name
    while name_taken(conn, candidate):
        candidate = f"{name}-{secrets.token_hex(2)}"
    return candidate


def take_free_name(worker: Any) -> None:
    """Before RQ's ``register_birth``: rename ``worker`` (an RQ worker) while its name is still held."""
    name = free_name(worker.connection, worker.name)
    if name == worker.name:
        return
    log.warning("worker name %s is still held (a killed worker's registration or claims): starting as %s",
                worker.name, name)  # fmt: skip
    worker.name = name
    with contextlib.suppress(redis.RedisError):
        worker.connection.client_setname(name)
