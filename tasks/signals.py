"""Celery's signals, with Celery's names and keyword arguments, on blinker (Flask's signal library).

Connect a receiver with ``@task_prerun.connect`` (blinker passes the sender first, then Celery's keyword
arguments)::

    from tasks.signals import task_prerun

    @task_prerun.connect
    def open_session(sender, task_id, task, args, kwargs, **extra):
        ...

Task signals fire in the worker around each job (``before_task_publish`` / ``after_task_publish`` in the
producer); worker signals fire in the worker process. A signal with no receivers costs one truthiness test.
"""

from __future__ import annotations

import logging
from typing import Any

from blinker import Namespace, Signal

__all__ = [
    "after_task_publish",
    "before_task_publish",
    "connected",
    "send",
    "task_failure",
    "task_postrun",
    "task_prerun",
    "task_retry",
    "task_revoked",
    "task_success",
    "worker_init",
    "worker_process_init",
    "worker_ready",
    "worker_shutdown",
]

log = logging.getLogger("taskrail.signals")
_signals = Namespace()

before_task_publish = _signals.signal("before_task_publish", doc="sender: task name; body, headers, routing_key")
after_task_publish = _signals.signal("after_task_publish", doc="sender: task name; body, headers, routing_key")
task_prerun = _signals.signal("task_prerun", doc="sender: task; task_id, task, args, kwargs")
task_postrun = _signals.signal("task_postrun", doc="sender: task; task_id, task, args, kwargs, retval, state")
task_success = _signals.signal("task_success", doc="sender: task; result")
task_failure = _signals.signal("task_failure", doc="sender: task; task_id, exception, args, kwargs, traceback, einfo")
task_retry = _signals.signal("task_retry", doc="sender: task; request, reason, einfo")
task_revoked = _signals.signal("task_revoked", doc="sender: task; request, terminated, signum, expired")
worker_init = _signals.signal("worker_init", doc="sender: the worker; before it starts")
worker_ready = _signals.signal("worker_ready", doc="sender: the worker; ready to take jobs")
worker_shutdown = _signals.signal("worker_shutdown", doc="sender: the worker; stopping")
worker_process_init = _signals.signal("worker_process_init", doc="sender: None; in a forked child (isolation: fork)")

_TASK_SIGNALS = (task_prerun, task_postrun, task_success, task_failure, task_retry, task_revoked)


_active = [False]  # whether any task signal has a receiver, kept current by blinker's own connect signals


def _recount(signal: Any, **_: Any) -> None:  # blinker passes sender= (the receiver's) as a keyword
    _active[0] = any(signal.receivers for signal in _TASK_SIGNALS)


for _signal in _TASK_SIGNALS:
    _signal.receiver_connected.connect(_recount)
    _signal.receiver_disconnected.connect(_recount)


def connected() -> bool:
    """Whether any task signal has a receiver (the worker's fast path skips them all when not); a receiver
    that was garbage-collected may leave it true, which only costs the slower path."""
    return _active[0]


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` if anyone listens; as Celery does, a receiver's error is logged and the others still run."""
    if not signal.receivers:
        return
    for receiver in list(signal.receivers_for(sender)):
        try:
            receiver(sender, **kwargs)
        except Exception:
            log.exception("a receiver of signal %s failed", getattr(signal, "name", signal))
