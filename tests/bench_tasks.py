"""The tasks ``taskrail bench`` runs on taskrail: the plain functions of ``tests/bench_jobs.py``, registered.

taskrail workers import this module through ``TASKRAIL_IMPORTS=tests.bench_tasks``; RQ workers run
the same functions from ``tests.bench_jobs``, so both kinds of job do exactly the same work.
"""

from __future__ import annotations

from tasks import task
from tests.bench_jobs import LATENCY_KEY, noop, record_start, sleep_io

QUEUE = "bench"

tr_noop = task(queue=QUEUE, name="bench.noop")(noop)
tr_sleep_io = task(queue=QUEUE, name="bench.sleep_io")(sleep_io)
tr_record_start = task(queue=QUEUE, name="bench.record_start")(record_start)

TASKS = {"noop": tr_noop, "io": tr_sleep_io, "latency": tr_record_start}

__all__ = ["LATENCY_KEY", "QUEUE", "TASKS"]
