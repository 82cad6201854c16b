"""The wire format: a taskrail job is an ordinary RQ job hash, JSON-encoded, with a few extra fields.

RQ reads ``data`` as ``[func_name, instance, args, kwargs]`` (zlib-compressed or not) through its
serializer, so `rq info`, `rq requeue` and rq-dashboard (with its JSON option) read taskrail jobs.
The ``tr_*`` fields are taskrail's own: task name, attempts, retries, priority, stalls, progress.

Outcomes go where RQ keeps them, the stream ``rq:results:<id>``: one entry per outcome, its ``type``
one of RQ's ``Result.Type`` numbers, a success with ``return_value`` (base64 of JSON), a failure or
retry with ``exc_string`` (base64 of zlib of the traceback text). This module encodes and decodes both.
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from config.errors import NotSerializable, PayloadTooLarge
from config.settings import MAX_PAYLOAD_BYTES_LIMIT

__all__ = [
    "DATA_ERRORS",
    "DATA_MAX_BYTES",
    "MAX_NESTING",
    "RESULT_FAILED",
    "RESULT_RETRIED",
    "RESULT_STOPPED",
    "RESULT_SUCCESS",
    "JobSpec",
    "UniqueMode",
    "decode_data",
    "decode_exc_string",
    "decode_return_value",
    "describe",
    "encode_data",
    "encode_exc_string",
    "encode_job",
    "encode_return_value",
    "entry_return_value",
    "entry_traceback",
    "epoch_text",
    "new_job_id",
    "utcnow_text",
]

RQ_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
DESCRIPTION_MAX = 200
# RQ's rq.results.Result.Type, as the stream holds them. The settle script (tasks/core/lua/includes/settle.lua)
# and the flow scripts write the same numbers.
RESULT_SUCCESS, RESULT_FAILED, RESULT_STOPPED, RESULT_RETRIED = b"1", b"2", b"3", b"4"
# What decode_data raises on data that is not taskrail's JSON (another client's job, or damage).
DATA_ERRORS = (ValueError, TypeError, zlib.error)
_DECODE = json.JSONDecoder().decode
# json.dumps with options builds an encoder per call; these are built once (an encoder keeps no state).
_ENCODE_DATA = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_ENCODE_VALUE = json.JSONEncoder(allow_nan=False).encode
# How deep arguments may nest (lists and dicts in lists and dicts): deeper is refused at enqueue,
# since Python's JSON parser and repr give up near 1000 levels, and no sane call needs 100.
MAX_NESTING = 100
# The job data decode_data reads: taskrail's envelope [name, instance, args, kwargs] adds 2 levels;
# the bytes are the highest max_payload_bytes a setting may ask for (4 times the 512 KiB default),
# so a small zlib bomb cannot inflate into hundreds of megabytes in a worker.
DATA_MAX_NESTING = MAX_NESTING + 2
DATA_MAX_BYTES = MAX_PAYLOAD_BYTES_LIMIT
# Stored as ``tr_unique_mode``; the enqueue and finish scripts branch on it.
UniqueMode = Literal["until_complete", "throttle", "debounce"]


def utcnow_text(now: datetime | None = None) -> str:
    """A timestamp in RQ's format."""
    return (now or datetime.now(UTC)).strftime(RQ_TIME_FORMAT)


_second: tuple[int, str] = (-1, "")  # the last whole second epoch_text formatted, and its text


def epoch_text(epoch: float) -> str:
    """``epoch`` (seconds) in RQ's time format, as ``utcnow_text``; cheap enough per job (the date part is
    formatted once per second)."""
    global _second
    whole = int(epoch)
    second, prefix = _second  # one read: threads replace the pair whole
    if whole != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{int((epoch - whole) * 1e6):06d}Z"


def new_job_id() -> str:
    """A random id in ``uuid.uuid4().hex``'s form (version 4, RFC 4122 variant), at a third of its cost."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


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
    data = encode_data(name, args, kwargs, max_payload_bytes)
    now = epoch_text(time.time())  # RQ's format, as utcnow_text, without a datetime per job
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
    data = encode_data(name, args, kwargs, max_payload_bytes)
    fields = {**template.fields, "data": data, "description": describe(name, args, kwargs)}
    return JobSpec(new_job_id(), template.queue, fields, template.run_at, template.priority)


def encode_data(name: str, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], max_payload_bytes: int) -> str:
    """The job's ``data`` field: ``[name, None, args, kwargs]`` as compact JSON (ASCII only).

    Raises:
        NotSerializable: an argument is not JSON, or nests more than ``MAX_NESTING`` levels deep.
        PayloadTooLarge: the text passes ``max_payload_bytes``.
    """
    try:
        data = _ENCODE_DATA([name, None, list(args), kwargs])
    except RecursionError as exc:  # past the encoder's own limit, near 1000 levels
        raise _too_deep(name) from exc
    except (TypeError, ValueError) as exc:
        raise NotSerializable(
            f"arguments of {name} are not JSON-serializable ({exc}); pass plain str, int, float, bool, "
            "None, list or dict values (e.g. an id instead of an object)"
        ) from exc
    # Counting brackets is cheap; only data with more of them than the limit can nest too deep.
    if data.count("[") + data.count("{") > DATA_MAX_NESTING and _nested_deeper([*args, *kwargs.values()], MAX_NESTING):
        raise _too_deep(name)
    if len(data) > max_payload_bytes:
        raise PayloadTooLarge(
            f"arguments of {name} encode to {len(data)} bytes, over the {max_payload_bytes}-byte limit; "
            "pass a reference (a file path, URL or database id) or raise TASKRAIL_MAX_PAYLOAD_BYTES"
        )
    return data


def _too_deep(name: str) -> NotSerializable:
    return NotSerializable(
        f"arguments of {name} are nested more than {MAX_NESTING} levels deep (lists and dicts inside each "
        "other); pass flatter data, or a reference to it (a file path, URL or database id)"
    )


def decode_data(raw: bytes | str) -> tuple[str, list[Any], dict[str, Any]]:
    """``data`` field -> (func name, args, kwargs); accepts RQ's zlib-compressed form too.

    Raises:
        ValueError, TypeError, zlib.error (``DATA_ERRORS``): not taskrail's JSON, larger than
        ``DATA_MAX_BYTES`` (compressed or not) or nested deeper than ``DATA_MAX_NESTING``.
    """
    if isinstance(raw, bytes) and raw[:1] not in (b"[", b"{"):
        raw = _inflate(raw, DATA_MAX_BYTES)
    if len(raw) > DATA_MAX_BYTES:
        raise ValueError(f"job data is {len(raw)} bytes, over the {DATA_MAX_BYTES}-byte limit")
    value = _loads(raw, DATA_MAX_NESTING)
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError("job data is not [func_name, instance, args, kwargs]")
    name, _instance, args, kwargs = value
    return str(name), list(args or []), dict(kwargs or {})


def _inflate(raw: bytes, limit: int) -> bytes:
    """zlib data inflated, refusing to produce more than ``limit`` bytes."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(raw, limit + 1)
    if len(data) > limit or inflater.unconsumed_tail:
        raise ValueError(f"compressed job data inflates to more than the {limit}-byte limit")
    return data


def _loads(raw: bytes | str, max_nesting: int) -> Any:
    """JSON with lists and dicts nested at most ``max_nesting`` levels, or a ValueError that says so."""
    if len(raw) <= max_nesting:  # too short to hold more brackets than the limit: the common case
        brackets = 0
    elif isinstance(raw, bytes):
        brackets = raw.count(b"[") + raw.count(b"{")
    else:
        brackets = raw.count("[") + raw.count("{")
    try:  # bytes: decoded as UTF-8 here (what taskrail writes), without json.loads' encoding detection
        value = _DECODE(raw.decode() if isinstance(raw, bytes) else raw)
    except RecursionError as exc:  # past the parser's own limit, near 1000 levels
        raise ValueError(f"job data is nested more than {max_nesting} levels deep") from exc
    if brackets > max_nesting and _nested_deeper([value], max_nesting):
        raise ValueError(f"job data is nested more than {max_nesting} levels deep")
    return value


def _nested_deeper(values: Iterable[Any], limit: int) -> bool:
    """Whether any list, tuple or dict in ``values`` lies more than ``limit`` levels deep.

    Depth first without recursion, so it answers early even for a structure that contains itself.
    """
    stack = [(value, 1) for value in values]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list | tuple):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value)
    return False


def encode_return_value(value: Any) -> str:
    """A return value as RQ's result entry holds it (``""`` for None).

    Raises:
        TypeError, ValueError: the value is not JSON.
    """
    return base64.b64encode(_ENCODE_VALUE(value).encode()).decode() if value is not None else ""


def decode_return_value(raw: bytes | str | None) -> Any:
    """The value of an encoded return value (None when empty)."""
    return json.loads(base64.b64decode(raw)) if raw else None


def encode_exc_string(text: str) -> str:
    """A traceback's text as RQ's result entry holds it: base64 of zlib."""
    return base64.b64encode(zlib.compress(text.encode())).decode()


def decode_exc_string(raw: bytes | str | None) -> str:
    """A traceback's text from its encoded form; ``""`` when empty or damaged (it is only ever shown)."""
    if not raw:
        return ""
    try:
        return zlib.decompress(base64.b64decode(raw)).decode(errors="replace")
    except (ValueError, zlib.error):
        return ""


def entry_return_value(entry: Mapping[bytes, bytes] | None) -> Any:
    """The return value a result entry holds, or None unless it is a success."""
    if entry is None or entry.get(b"type") != RESULT_SUCCESS:
        return None
    return decode_return_value(entry.get(b"return_value"))


def entry_traceback(entry: Mapping[bytes, bytes] | None) -> str:
    """The traceback text a result entry holds (a failure's or a retry's), or ``""``."""
    return decode_exc_string(entry.get(b"exc_string")) if entry is not None else ""
