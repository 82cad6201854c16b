"""A task's plain call, packed once: per call only the id, the time, the data and the description.

A plain call is ``delay(*args, **kwargs)`` (or ``apply_async(args, kwargs)`` with no option) of a task whose
own options need nothing computed per call: no ``expires``, ``limit_key`` or ``unique``. Its enqueue command
(tasks/core/lua/enqueue.lua) differs from the task's previous plain call in six arguments: the job key, the
job id, ``created_at`` and ``enqueued_at``, ``data`` and ``description``. The rest (queue keys, the task's
routing, time limit, result ttl, priority, rate limit fields, the script's SHA) is resolved and packed into
RESP bytes the first time, through the same ``Task.encode_call`` and ``Client._script_args`` as any other
call, so the job hash is the same field for field. Each call then fills the six values into one bytes
format, and sends it on the client's held connection (tasks/core/wire.py).

A template is built per task and client, and rebuilt when the task's options or signature are replaced.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from tasks.core import keys
from tasks.core.protocol import JobSpec, describe, encode_data, epoch_text, new_job_id
from tasks.core.wire import bulk, encoded

if TYPE_CHECKING:
    from tasks.core.client import Client
    from tasks.core.task import Task

__all__ = ["Prepacked", "prepacked"]

_MARK = "\0taskrail:{}\0"  # what stands for a per-call value while the template is packed
VARYING = ("id", "created_at", "enqueued_at", "data", "description")
_ORDER = ("key", "id", "created_at", "enqueued_at", "data", "description")  # where _script_args puts them
_SLOT = b"$%d\r\n%b\r\n"


@dataclass(frozen=True)
class Prepacked:
    """The enqueue command of one task's plain calls on one client, all but six values packed."""

    made_from: tuple[Any, ...]  # the task's options, signature and queue choice it was built from
    name: str
    max_payload_bytes: int
    spec: JobSpec  # the job with marks for the per-call values, for the path that does not send bytes
    format: bytes  # the packed command, with a RESP bulk slot per per-call value, in _ORDER
    encoding: tuple[str, str]  # the client's encoding and its error handler
    job_prefix: bytes = keys.JOB.format("").encode()

    def enqueue(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], client: Client) -> str:
        """Check and encode one call, write it; returns the job id (the spec's checks, the same errors).

        Raises:
            ConfigError, EnqueueError: as ``Task.build_job``, before anything is written.
        """
        task.check_arguments(args, kwargs)
        data = encode_data(self.name, args, kwargs, self.max_payload_bytes)
        description = describe(self.name, args, kwargs)
        job_id = new_job_id()
        now = epoch_text(time.time())
        encoding, errors = self.encoding
        jid, at = job_id.encode(), now.encode()
        key, raw, text = self.job_prefix + jid, data.encode(encoding, errors), description.encode(encoding, errors)
        packed = self.format % (len(key), key, len(jid), jid, len(at), at, len(at), at, len(raw), raw,
                                len(text), text)  # fmt: skip
        return client.send_enqueue(packed, lambda: self.job(job_id, now, data, description))

    def job(self, job_id: str, now: str, data: str, description: str) -> JobSpec:
        """The call as a ``JobSpec``: what ``Client.enqueue`` writes, field for field the same."""
        values = {"created_at": now, "enqueued_at": now, "data": data, "description": description}
        return replace(self.spec, job_id=job_id, fields={**self.spec.fields, **values})


def prepacked(task: Task[Any, Any], client: Client) -> Prepacked | None:
    """The template of ``task``'s plain calls on ``client`` (cached on the client), or None when its options
    need work per call."""
    opts = task.options
    if opts.expires is not None or opts.limit_key is not None or opts.unique:
        return None
    found: Prepacked | None = client.prepacked.get(task)
    if found is None or found.made_from != (opts, task.call_signature, task.queue_declared):
        found = _build(task, client, (opts, task.call_signature, task.queue_declared))
        client.prepacked[task] = found
    return found


def _build(task: Task[Any, Any], client: Client, made_from: tuple[Any, ...]) -> Prepacked:
    spec = task.encode_call((), {}, client, {}, {})
    marks = {name: _MARK.format(name) for name in VARYING}
    spec = replace(spec, job_id=marks["id"], fields={**spec.fields, **{n: marks[n] for n in VARYING[1:]}})
    keys_, argv = client._script_args(spec)
    by_mark = {mark: name for name, mark in marks.items()}
    by_mark[keys.JOB.format(marks["id"])] = "key"
    parts: list[Any] = ["EVALSHA", client.enqueue_script.sha, len(keys_), *keys_, *argv]
    order = tuple(by_mark[part] for part in parts if part in by_mark)
    if order != _ORDER:  # the layout of _script_args changed; the format below fills values in _ORDER
        raise RuntimeError(f"enqueue arguments are laid out as {order}, not {_ORDER}: update tasks/core/prepacked.py")
    pieces = [b"*%d\r\n" % len(parts)]
    for part, raw in zip(parts, encoded(client.redis, parts), strict=True):
        pieces.append(_SLOT if part in by_mark else bulk(raw).replace(b"%", b"%%"))
    encoder = client.redis.get_encoder()
    return Prepacked(made_from, task.name, client.settings.max_payload_bytes, spec, b"".join(pieces),
                     (encoder.encoding, encoder.encoding_errors))  # fmt: skip
