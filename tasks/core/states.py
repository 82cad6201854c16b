"""Celery's custom states: ``self.update_state(state="PROGRESS", meta={...})`` in a task, and
``AsyncResult.state`` / ``.info`` showing them while the job runs.

The state and its meta are two fields of the job's hash (``tr_state``, ``tr_meta``, JSON), written only
when a task calls ``update_state``: a task that never does costs nothing.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from config.errors import NotSerializable
from tasks.core import keys

__all__ = ["META_MAX_BYTES", "check_state", "custom_state", "write_state"]

META_MAX_BYTES = 64 * 1024
STATE_MAX_CHARS = 100
ENDING_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def check_state(state: Any, meta: Any, where: str) -> str:
    """``meta`` as JSON, after checking ``state`` is a short name and ``meta`` is small JSON.

    Raises:
        ValueError: ``state`` is not a non-empty string of up to 100 characters.
        NotSerializable: ``meta`` is not JSON or encodes to more than 64 KiB.
    """
    if not isinstance(state, str) or not state or len(state) > STATE_MAX_CHARS:
        raise ValueError(f"{where}: state must be a name like 'PROGRESS' (1 to {STATE_MAX_CHARS} characters), "
                         f"got {state!r}")  # fmt: skip
    if state in ENDING_STATES:
        raise ValueError(f"{where}: {state} is set by the worker when the task ends; return a value or raise instead")
    try:
        text = json.dumps(meta, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise NotSerializable(f"{where}: meta is not JSON-serializable ({exc}); pass a dict of plain values") from exc
    if len(text) > META_MAX_BYTES:
        raise NotSerializable(f"{where}: meta encodes to {len(text)} bytes, over {META_MAX_BYTES}; keep it small")
    return text


def write_state(conn: redis.Redis, job_id: str, state: str, meta_json: str, own: bool = True) -> bool:
    """Record a custom state on a job: the running one (``own``), or another that must exist already
    (False, nothing written, when it does not)."""
    job_key = keys.JOB.format(job_id)
    if not own and not conn.exists(job_key):
        return False
    conn.hset(job_key, mapping={"tr_state": state, "tr_meta": meta_json})
    return True


def custom_state(status: str, fields: dict[bytes, bytes]) -> tuple[str, Any] | None:
    """The custom state and meta a running job last reported, or None."""
    if status != "started" or b"tr_state" not in fields:
        return None
    raw = fields.get(b"tr_meta")
    return fields[b"tr_state"].decode(errors="replace"), json.loads(raw) if raw else None
