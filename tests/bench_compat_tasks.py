"""The jobs docs/bench_compat.py drains: no-ops (``async def`` for the asyncio mode, plain otherwise), an RQ
``on_success`` callback that does nothing and, with ``BENCH_COMPAT_SIGNALS=1`` in the worker's environment,
three Celery task signal receivers that do nothing: what the compatibility features cost per job, alone."""

from __future__ import annotations

import os
from typing import Any

from tasks import register_callback, signals, task

QUEUE = "compat"


@task(queue=QUEUE, name="compat.noop")
async def noop() -> None:
    """Does nothing, on the event loop."""


@task(queue=QUEUE, name="compat.sync_noop")
def sync_noop() -> None:
    """Does nothing, on a thread."""


@register_callback
def on_ok(job: Any, connection: Any, result: Any) -> None:
    """RQ's on_success, doing nothing."""


def _receiver(*args: Any, **kwargs: Any) -> None:
    """A Celery signal receiver, doing nothing."""


if os.environ.get("BENCH_COMPAT_SIGNALS"):
    for _signal in (signals.task_prerun, signals.task_postrun, signals.task_success):
        _signal.connect(_receiver, weak=False)
