"""The worker's side of Celery's per-job features, used only by jobs that need one: per-call options
(``expires``, ``link``, ``link_error``, ``headers``, ``ignore_result``, ``soft_time_limit``, ``shadow``;
tasks/core/celery_calls.py), a ``base=`` class's hooks, a ``soft_time_limit`` and the task signals.

``workers.runner.run_job`` asks ``needs_around`` and, only when it says yes, runs the job through
``run_around``; every other job takes the plain path and pays nothing for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from config.errors import SoftTimeLimitExceeded
from tasks import signals
from tasks.core.context import ExceptionInfo, Request
from tasks.core.protocol import decode_exc_string

__all__ = [
    "begin_around",
    "celery_request",
    "end_around",
    "needs_around",
    "parse_flow",
    "run_around",
    "soft_limit",
    "soft_limit_s",
    "soft_limited",
]

log = logging.getLogger("taskrail.worker")
HOSTNAME = socket.gethostname()
_STATUS = {"ok": "SUCCESS", "fail": "FAILURE", "retry": "RETRY", "revoked": "REVOKED", "stopped": "REVOKED"}


def celery_request(job: Any, task: Any, args: list[Any], kwargs: dict[str, Any],
                   celery: dict[str, Any] | None) -> Request:  # fmt: skip
    """``self.request`` of a bound task, with Celery's fields."""
    celery = celery or {}
    return Request(
        job.id, task.name, job.queue, job.attempts, job.retries, tuple(args), kwargs,
        hostname=HOSTNAME, delivery_info={"routing_key": job.queue, "exchange": "", "redelivered": job.stalls > 0},
        root_id=job.id, correlation_id=job.id, headers=celery.get("headers") or {}, expires=celery.get("expires"),
    )  # fmt: skip


def parse_flow(flow: bytes) -> tuple[dict[str, Any] | None, bool]:
    """A job's ``tr_flow`` object: its Celery per-call options (or None) and whether it is a flow member."""
    spec = json.loads(flow)  # CLAIM checked it is a JSON object
    celery = spec.pop("celery", None)
    return (celery if isinstance(celery, dict) else None), bool(spec)


def needs_around(task: Any, celery: dict[str, Any] | None) -> bool:
    """Whether a job needs ``run_around``: per-call options, hooks, a soft limit or connected signals."""
    return celery is not None or task.hooked or task.options.soft_time_limit is not None or signals.connected()


def run_around(job: Any, task: Any, args: list[Any], kwargs: dict[str, Any], celery: dict[str, Any],
               execute: Callable[[float | None], Any], outcome_cls: Any) -> Any:  # fmt: skip
    """Run ``execute(soft_limit)`` with the job's Celery features around it; returns its outcome."""
    early = begin_around(job, task, args, kwargs, celery, outcome_cls)
    if early is not None:
        return early
    return end_around(job, task, args, kwargs, celery, execute(soft_limit_s(task, celery)))


def soft_limit_s(task: Any, celery: dict[str, Any]) -> float | None:
    """The job's soft time limit: its call's ``soft_time_limit``, else its task's."""
    soft: float | None = celery.get("soft", task.options.soft_time_limit)
    return soft


def begin_around(job: Any, task: Any, args: list[Any], kwargs: dict[str, Any], celery: dict[str, Any],
                 outcome_cls: Any) -> Any:  # fmt: skip
    """What runs before the task (``expires``, ``task_prerun``, ``before_start``); the outcome of an
    expired job, which must not run, else None."""
    expires = celery.get("expires")
    if expires is not None and time.time() > expires:
        signals.send(signals.task_revoked, task, request=job, terminated=False, signum=None, expired=True)
        return outcome_cls(job, "revoked", task.name, ttl=job.failure_ttl, exc_type="expired")
    signals.send(signals.task_prerun, task, task_id=job.id, task=task, args=args, kwargs=kwargs)
    if task.hooked:
        task.before_start(job.id, tuple(args), kwargs)
    return None


def end_around(job: Any, task: Any, args: list[Any], kwargs: dict[str, Any], celery: dict[str, Any],
               outcome: Any) -> Any:  # fmt: skip
    """What runs after the task (per-call ``ignore_result`` and ``shadow``, hooks, signals, links); the outcome."""
    if celery.get("ignore_result") and outcome.kind == "ok":
        outcome.payload = ""
    if celery.get("shadow"):
        outcome.task = celery["shadow"]
    _after(job, task, args, kwargs, celery, outcome)
    return outcome


def _after(job: Any, task: Any, args: list[Any], kwargs: dict[str, Any], celery: dict[str, Any], outcome: Any) -> None:
    status = _STATUS.get(outcome.kind, outcome.kind.upper())
    value, error = outcome.value, outcome.error
    einfo = ExceptionInfo(error, type(error) if error else None, decode_exc_string(outcome.payload)) if error else None
    call = (job.id, tuple(args), kwargs)
    try:
        if outcome.kind == "ok":
            if task.hooked:
                task.on_success(value, *call)
            signals.send(signals.task_success, task, result=value)
            _enqueue_links(celery.get("link", ()), value)
        elif outcome.kind == "fail" and error is not None:
            if task.hooked:
                task.on_failure(error, *call, einfo)
            signals.send(signals.task_failure, task, task_id=job.id, exception=error, args=args, kwargs=kwargs,
                         traceback=einfo.traceback if einfo else "", einfo=einfo)  # fmt: skip
            _call_errbacks(celery.get("link_error", ()), job, error, einfo)
        elif outcome.kind == "retry" and error is not None:
            if task.hooked:
                task.on_retry(error, *call, einfo)
            signals.send(signals.task_retry, task, request=job, reason=error, einfo=einfo)
        elif outcome.kind in ("revoked", "stopped"):
            signals.send(signals.task_revoked, task, request=job, terminated=True, signum=None, expired=False)
        if task.hooked:
            task.after_return(status, value if outcome.kind == "ok" else error, *call, einfo)
    except Exception:  # a hook's own error must not change how the job ended
        log.exception("a Celery hook or callback of job %s failed", job.id)
    signals.send(signals.task_postrun, task, task_id=job.id, task=task, args=args, kwargs=kwargs,
                 retval=value if outcome.kind == "ok" else error, state=status)  # fmt: skip


def _signature(stored: dict[str, Any]) -> Any:
    from tasks.core.byname import signature  # the producer side, only when a job has callbacks

    return signature(stored["task"], stored.get("args", ()), stored.get("kwargs"), **stored.get("options", {}))


def _enqueue_links(links: list[dict[str, Any]], value: Any) -> None:
    """Celery's ``link``: each callback gets the result first, unless it is immutable."""
    for stored in links:
        sig = _signature(stored)
        sig.apply_async((value,)) if not stored.get("immutable") else sig.apply_async()


def _call_errbacks(errbacks: list[dict[str, Any]], job: Any, error: BaseException, einfo: Any) -> None:
    """Celery 4+'s ``link_error``: a task taking ``(request, exc, traceback)`` runs here, in the worker, with
    them; an older one-parameter errback is enqueued with the failed task's id."""
    for stored in errbacks:
        sig = _signature(stored)
        params = list(sig.task.call_signature.parameters.values())[1 if sig.task.options.bind else 0 :]
        registered = sig.task.func.__name__ != "remote"
        if registered and len(params) - len(sig.args) >= 3:
            sig.task(job, error, einfo.traceback if einfo else "", *sig.args, **sig.kwargs)
        else:
            sig.apply_async((job.id,))


# ---- soft time limits ---------------------------------------------------------------------------------
_armed: dict[int, bool] = {}


def _on_soft_signal(signum: int, frame: object) -> None:
    if _armed.pop(threading.get_ident(), False):
        raise SoftTimeLimitExceeded("the task ran past its soft_time_limit")


@contextlib.contextmanager
def soft_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``SoftTimeLimitExceeded`` in this thread after ``seconds``; on the main thread a signal also
    breaks a blocking call such as ``sleep`` (a thread gets it at its next Python instruction)."""
    if not seconds:
        yield
        return
    ident = threading.get_ident()
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGUSR2) is not _on_soft_signal:
        signal.signal(signal.SIGUSR2, _on_soft_signal)

    def fire() -> None:
        if main:
            _armed[ident] = True
            signal.pthread_kill(ident, signal.SIGUSR2)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(SoftTimeLimitExceeded))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with contextlib.suppress(SoftTimeLimitExceeded):  # a limit that lands as the task returns
            timer.cancel()
            _armed.pop(ident, None)


async def soft_limited(awaitable: Awaitable[Any], seconds: float) -> Any:
    """An ``async def`` task under a soft limit: at the limit its coroutine is cancelled (asyncio's
    ``CancelledError`` at its current ``await``), then the job fails with ``SoftTimeLimitExceeded``."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError as exc:
        raise SoftTimeLimitExceeded(f"the task ran past its soft_time_limit of {seconds}s") from exc
