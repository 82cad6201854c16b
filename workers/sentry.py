"""Task failures in Sentry: set ``SENTRY_DSN`` and every worker reports them, arguments scrubbed by default.

Jobs run inside taskrail's own loop, not RQ's ``perform_job``, so a failure is reported from its
outcome (type, message and the traceback text the worker keeps) rather than from a live exception.
sentry-sdk's RQ integration is installed too, for what of RQ still runs (enqueues through RQ's API).
Task arguments often carry secrets, so they, their description and local variables are removed
from every event unless ``sentry_send_args`` (``TASKRAIL_SENTRY_SEND_ARGS=1``) is on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from config.settings import Settings
from tasks.core import keys
from tasks.core.protocol import DATA_ERRORS, decode_data, decode_exc_string

if TYPE_CHECKING:
    import redis

    from workers.runner import ClaimedJob, Outcome

__all__ = ["before_send_for", "capture_failure", "capture_stalled", "init_sentry"]

log = logging.getLogger("taskrail.sentry")

JOB_CONTEXT = "taskrail_job"
SCRUBBED = "[scrubbed: set TASKRAIL_SENTRY_SEND_ARGS=1 to send task arguments]"
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)\n(?:    (?P<code>.+)\n)?', re.M)

Event = dict[str, Any]


def init_sentry(settings: Settings) -> bool:
    """Start sentry-sdk when ``SENTRY_DSN`` is set (once per process); True if Sentry is on."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk

    if sentry_sdk.get_client().is_active():
        return True
    integrations: list[Any] = []
    try:
        from sentry_sdk.integrations.rq import RqIntegration

        integrations.append(RqIntegration())
    except Exception as exc:  # DidNotEnable on an RQ it does not support: report without it
        log.warning("sentry-sdk's RQ integration is not available (%s); reporting task failures without it", exc)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=integrations,
        send_default_pii=settings.sentry_send_args,
        include_local_variables=settings.sentry_send_args,
        before_send=cast(Any, before_send_for(settings.sentry_send_args)),  # the SDK types events as a TypedDict
    )
    log.info("reporting task failures to Sentry (task arguments %s)", "on" if settings.sentry_send_args else "off")
    return True


def capture_failure(job: ClaimedJob, outcome: Outcome) -> None:
    """Report one failed job (its dead-letter moment), tagged with task, queue, attempt and job id."""
    import sentry_sdk

    if not sentry_sdk.get_client().is_active():
        return
    try:
        _name, args, kwargs = decode_data(job.data)
    except DATA_ERRORS:
        args, kwargs = [], {}
    exception = {
        "type": outcome.exc_type or "Exception",
        "value": outcome.exc_message,
        "mechanism": {"type": "taskrail", "handled": False},
        "stacktrace": {"frames": _frames(decode_exc_string(outcome.payload))},
    }
    event: Event = {
        "level": "error",
        "logger": "taskrail.worker",
        "transaction": outcome.task,
        "exception": {"values": [exception]},
        "contexts": {JOB_CONTEXT: _job_context(job.id, job.queue, outcome.task, job.attempts, args, kwargs)},
    }
    with sentry_sdk.new_scope() as scope:
        _tag(scope, outcome.task, job.queue, job.attempts, job.id)
        scope.set_tag("retries", str(job.retries))
        sentry_sdk.capture_event(cast(Any, event))


def capture_stalled(conn: redis.Redis, job_ids: Iterable[str], max_stalled: int) -> None:
    """Report jobs handed back (or failed) because their worker died; call with REAP's result."""
    import sentry_sdk

    if not sentry_sdk.get_client().is_active():
        return
    for job_id in job_ids:
        fields = {k.decode(): v.decode(errors="replace") for k, v in conn.hgetall(keys.JOB.format(job_id)).items()}
        stalls = int(fields.get("tr_stalls") or 0)
        task, queue, attempt = fields.get("tr_task", ""), fields.get("origin", ""), int(fields.get("tr_attempts") or 0)
        failed = stalls > max_stalled
        try:
            _name, args, kwargs = decode_data(fields.get("data", "[]"))
        except DATA_ERRORS:
            args, kwargs = [], {}
        event: Event = {
            "level": "error" if failed else "warning",
            "logger": "taskrail.maintenance",
            "transaction": task,
            "message": f"job {job_id} ({task}) stalled {stalls} times: its worker died while running it; "
            + ("failed (max_stalled passed)" if failed else "requeued at the front of its queue"),
            "fingerprint": ["taskrail-stalled", task],
            "contexts": {JOB_CONTEXT: _job_context(job_id, queue, task, attempt, args, kwargs)},
        }
        with sentry_sdk.new_scope() as scope:
            _tag(scope, task, queue, attempt, job_id)
            scope.set_tag("stalled", str(stalls))
            sentry_sdk.capture_event(cast(Any, event))


def before_send_for(send_args: bool) -> Callable[[Event, Any], Event | None]:
    """The ``before_send`` hook: without ``send_args``, remove arguments, descriptions and local variables."""

    def before_send(event: Event, hint: Any) -> Event | None:
        if send_args:
            return event
        job = event.get("contexts", {}).get(JOB_CONTEXT)
        if isinstance(job, dict):
            for name in ("args", "kwargs"):
                if name in job:
                    job[name] = SCRUBBED
        extra = event.get("extra", {})
        rq_job = extra.get("rq-job") if isinstance(extra, dict) else None
        if isinstance(rq_job, dict):  # written by sentry-sdk's RQ integration
            for name in ("args", "kwargs", "description"):
                if name in rq_job:
                    rq_job[name] = SCRUBBED
        for value in event.get("exception", {}).get("values", []) or []:
            for frame in (value.get("stacktrace") or {}).get("frames", []) or []:
                frame.pop("vars", None)
        for thread in event.get("threads", {}).get("values", []) or []:
            for frame in (thread.get("stacktrace") or {}).get("frames", []) or []:
                frame.pop("vars", None)
        return event

    return before_send


def _job_context(job_id: str, queue: str, task: str, attempt: int, args: list[Any],
                 kwargs: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {"id": job_id, "queue": queue, "task": task, "attempt": attempt, "args": args, "kwargs": kwargs}


def _tag(scope: Any, task: str, queue: str, attempt: int, job_id: str) -> None:
    scope.set_tag("task", task)
    scope.set_tag("queue", queue)
    scope.set_tag("attempt", str(attempt))
    scope.set_tag("job_id", job_id)


def _frames(traceback_text: str) -> list[dict[str, Any]]:
    """Sentry frames (oldest first, as Sentry wants them) from a Python traceback's text."""
    return [
        {
            "filename": match["file"],
            "abs_path": match["file"],
            "lineno": int(match["line"]),
            "function": match["func"].strip(),
            "context_line": (match["code"] or "").strip(),
            "in_app": "site-packages" not in match["file"],
        }
        for match in _FRAME.finditer(traceback_text)
    ]
