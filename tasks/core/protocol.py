"""The wire format: a taskrail job is an ordinary RQ job hash, JSON-encoded, with a few extra fields.

RQ reads ``data`` as ``[func_name, instance, args, kwargs]`` (zlib-compressed or not) through its
serializer, so `rq info`, `rq requeue` and rq-dashboard (with its JSON option) read taskrail jobs.
The ``tr_*`` fields are taskrail's own: task name, attempts, retries, priority, stalls, progress.
"""

from __future__ import annotations

import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from config.errors import NotSerializable, PayloadTooLarge

__all__ = ["JobSpec", "UniqueMode", "decode_data", "describe", "encode_job", "new_job_id", "utcnow_text"]

RQ_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
DESCRIPTION_MAX = 200
# Stored as ``tr_unique_mode``; the enqueue and finish scripts branch on it.
UniqueMode = Literal["until_complete", "throttle", "debounce"]


def utcnow_text(now: datetime | None = None) -> str:
    """A timestamp in RQ's format."""
    return (now or datetime.now(UTC)).strftime(RQ_TIME_FORMAT)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobSpec:
    """One job ready to write: its id, queue, hash fields and when it may run (0 = now)."""

    job_id: str
    queue: str
    fields: dict[str, str | int]
    run_at: float = 0.0
    priority: int | None = None
    unique_key: str | None = None
    unique_ttl_s: int = 0
    unique_mode: UniqueMode | Literal[""] = ""  # "": not unique


def describe(name: str, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str:
    """RQ-style description: ``tasks.emails.send_email('a@example.com', subject='Hi')``, shortened."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    text = f"{name}({', '.join(parts)})"
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def encode_job(
    name: str,
    args: tuple[Any, ...] | list[Any],
    kwargs: dict[str, Any],
    *,
    queue: str,
    max_payload_bytes: int,
    job_id: str | None = None,
    run_at: float = 0.0,
    time_limit: float | None = None,
    result_ttl: int,
    failure_ttl: int,
    priority: int | None = None,
    extra: dict[str, str | int] | None = None,
) -> JobSpec:
    """Encode one call as RQ job fields, or raise before anything is written.

    Raises:
        NotSerializable: an argument is not JSON (the message names which).
        PayloadTooLarge: the encoded call passes ``max_payload_bytes``.
    """
    data = _dump(name, args, kwargs, max_payload_bytes)
    now = utcnow_text()
    fields: dict[str, str | int] = {
        "created_at": now,
        "enqueued_at": now,
        "data": data,
        "description": describe(name, args, kwargs),
        "origin": queue,
        "status": "scheduled" if run_at else "queued",
        "timeout": int(time_limit) if time_limit else -1,
        "result_ttl": result_ttl,
        "failure_ttl": failure_ttl,
        "tr_task": name,
    }
    if priority is not None:
        fields["tr_priority"] = priority
    if extra:
        fields.update(extra)
    return JobSpec(job_id or new_job_id(), queue, fields, run_at, priority)


def reencode(
    template: JobSpec, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], max_payload_bytes: int
) -> JobSpec:
    """A job like ``template`` (same task, queue and options) for another call; raises like encode_job."""
    data = _dump(name, args, kwargs, max_payload_bytes)
    fields = {**template.fields, "data": data, "description": describe(name, args, kwargs)}
    return JobSpec(new_job_id(), template.queue, fields, template.run_at, template.priority)


def _dump(name: str, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], max_payload_bytes: int) -> str:
    try:
        data = json.dumps([name, None, list(args), kwargs], separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NotSerializable(
            f"arguments of {name} are not JSON-serializable ({exc}); pass plain str, int, float, bool, "
            "None, list or dict values (e.g. an id instead of an object)"
        ) from exc
    if len(data) > max_payload_bytes:
        raise PayloadTooLarge(
            f"arguments of {name} encode to {len(data)} bytes, over the {max_payload_bytes}-byte limit; "
            "pass a reference (a file path, URL or database id) or raise TASKRAIL_MAX_PAYLOAD_BYTES"
        )
    return data


def decode_data(raw: bytes | str) -> tuple[str, list[Any], dict[str, Any]]:
    """``data`` field -> (func name, args, kwargs); accepts RQ's zlib-compressed form too."""
    if isinstance(raw, bytes) and raw[:1] not in (b"[", b"{"):
        raw = zlib.decompress(raw)
    value = json.loads(raw)
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError("job data is not [func_name, instance, args, kwargs]")
    name, _instance, args, kwargs = value
    return str(name), list(args or []), dict(kwargs or {})
