"""The bench's jobs as ``async def`` tasks, for ``taskrail bench``'s ``taskrail_async`` system (``pool: asyncio``).

Same names and the same work as tests/bench_tasks.py, so the producer's jobs are the same: the no-op does
nothing, the I/O job waits 20 ms (on the loop, as an async task would), the latency job records its start.
"""

from __future__ import annotations

import asyncio

from tasks import task
from tests.bench_jobs import IO_SECONDS, record_start

QUEUE = "bench"


@task(queue=QUEUE, name="bench.noop")
async def noop() -> None:
    """Does nothing: what is measured is the framework's cost per job."""


@task(queue=QUEUE, name="bench.sleep_io")
async def sleep_io() -> None:
    """Stands for an I/O-bound job: 20 ms waiting on something else, without holding a thread."""
    await asyncio.sleep(IO_SECONDS)


@task(queue=QUEUE, name="bench.record_start")
async def tr_record_start(enqueued_at: float) -> None:
    """Records how long ago the producer enqueued this job (one short blocking push, as the other systems do)."""
    record_start(enqueued_at)
