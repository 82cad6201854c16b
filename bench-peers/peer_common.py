"""Shared by the Celery, Dramatiq and Huey drivers of ``taskrail bench --peers`` (they run in .venv-peers).

A peer has no registry of finished jobs to count, so each worker process counts the jobs it ran and
the jobs that failed, and adds the counts to ``bench:done`` and ``bench:failed`` every 10 ms from a
background thread: one write per 10 ms, not per job. A job run twice counts twice.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

DONE_KEY = "bench:done"
FAILED_KEY = "bench:failed"
READY_KEY = "bench:ready"
LATENCY_KEY = "bench:latency"
IO_SECONDS = 0.02
_lock = threading.Lock()
_state: dict[str, Any] = {"pid": 0, "pending": 0, "failed": 0}


def conn() -> redis.Redis:
    """This process's connection; the first call in a process (or after a fork) starts its flusher."""
    pid = os.getpid()
    if _state["pid"] != pid:
        with _lock:  # many job threads may get here at once: only one sets up, no count is reset later
            if _state["pid"] != pid:
                _state.update(conn=redis.Redis.from_url(os.environ["REDIS_URL"]), pending=0, failed=0)
                _state["pid"] = pid
                threading.Thread(target=_flusher, args=(pid,), daemon=True).start()
    return _state["conn"]


def _flusher(pid: int) -> None:
    while _state["pid"] == pid:
        time.sleep(0.01)
        with _lock:
            pending, _state["pending"] = _state["pending"], 0
            failed, _state["failed"] = _state["failed"], 0
        if failed:  # before the done count: the bench never sees all done and misses the failure
            conn().incrby(FAILED_KEY, failed)
        if pending:
            conn().incrby(DONE_KEY, pending)


def job_done() -> None:
    conn()
    with _lock:
        _state["pending"] += 1


def job_failed() -> None:
    """Called by the peer's failure hook (signal, middleware) for every failed run of a job."""
    conn()
    with _lock:
        _state["failed"] += 1


def noop() -> None:
    job_done()


def sleep_io() -> None:
    time.sleep(IO_SECONDS)
    job_done()


def fail() -> None:
    """Raises: the bench never enqueues it; it shows a peer's failure hook counts (``fill fail N``)."""
    raise RuntimeError("bench: a job that fails on purpose")


def record_start(enqueued_at: float) -> None:
    conn().rpush(LATENCY_KEY, time.time() - enqueued_at)
    job_done()


def mark_ready() -> None:
    conn().sadd(READY_KEY, f"{os.getpid()}-{threading.get_ident()}")  # Huey marks once per worker thread


WARM_UP_CALLS = 100  # as scripts/bench/workloads.py


def driver(one: Callable[[str, tuple], None], bulk: Callable[[str, int], None] | None) -> None:
    """The command line every peer driver shares: enqueue-one N | enqueue-bulk N | fill KIND N | paced RATE N."""
    command, *args = sys.argv[1:]
    if command == "enqueue-one":
        n = int(args[0])
        for _ in range(min(WARM_UP_CALLS, n)):  # untimed: a running producer's rate, not its first call's
            one("noop", ())
        start = time.perf_counter()
        for _ in range(n):
            one("noop", ())
        print(json.dumps({"rate": n / (time.perf_counter() - start)}))
    elif command == "enqueue-bulk":
        n = int(args[0])
        if bulk is None:
            print(json.dumps({"rate": None}))
            return
        start = time.perf_counter()
        bulk("noop", n)
        print(json.dumps({"rate": n / (time.perf_counter() - start)}))
    elif command == "fill":
        kind, n = args[0], int(args[1])
        if bulk is not None:
            bulk(kind, n)
        else:
            for _ in range(n):
                one(kind, ())
        print("{}")
    elif command == "paced":
        rate, n = float(args[0]), int(args[1])
        start = time.perf_counter()
        for i in range(n):
            ahead = start + i / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            one("latency", (time.time(),))
        print("{}")
    else:
        raise SystemExit(f"unknown command {command!r}")
