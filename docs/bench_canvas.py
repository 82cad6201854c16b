"""Enqueue time of a 10,000-child chord (and a 10,000-item ``chunks(..., 100)``) next to plain RQ's
``Queue.enqueue_many`` of 10,000 jobs.

Run from the repository root: ``.venv/bin/python docs/bench_canvas.py [N] [ROUNDS]``. It starts its own
server in a temporary folder (or uses ``REDIS_URL`` when set, flushing database 0 between rounds) and
prints, for each way of writing N jobs, the median of ``ROUNDS`` runs of: wall time, this process's CPU
time, and the server's time spent in commands (from INFO commandstats). Nothing runs the jobs. CPU
figures matter on a shared machine, where wall time mostly measures the neighbours.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis
from rq import Queue
from rq.serializers import JSONSerializer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import start_server
from config.settings import load_settings
from tasks import chord, group
from tasks.core.client import Client
from tests import tasks_canvas as t


@dataclass
class Sample:
    """One write: wall time, this process's CPU time, and the server's time in commands."""

    wall_s: float
    client_cpu_s: float
    server_s: float


def measure(conn: redis.Redis, write: Callable[[], object]) -> Sample:
    """Run ``write`` on an empty database with fresh server command statistics."""
    conn.flushdb()
    conn.config_resetstat()
    wall, cpu = time.perf_counter(), time.process_time()
    write()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = conn.info("commandstats")
    server = sum(v["usec"] for k, v in stats.items() if k != "cmdstat_info") / 1e6
    return Sample(wall, cpu, server)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = start_server(Path(tempfile.mkdtemp(prefix="bench-canvas-")))
        url = server.url
    conn = redis.Redis.from_url(url)
    client = Client(load_settings({"REDIS_URL": url}))
    queue = Queue("bench-rq", connection=conn, serializer=JSONSerializer)

    def rq_enqueue_many() -> object:
        datas = [Queue.prepare_data("tests.tasks_canvas.square", (i,)) for i in range(n)]
        return queue.enqueue_many(datas)

    cases: list[tuple[str, Callable[[], object]]] = [
        (f"RQ Queue.enqueue_many, {n} jobs", rq_enqueue_many),
        (f"taskrail Task.enqueue_many, {n} jobs", lambda: t.square.enqueue_many([(i,) for i in range(n)], client=client)),
        (f"taskrail group, {n} children", lambda: group(t.square.s(i) for i in range(n)).apply_async(client=client)),
        (f"taskrail chord, {n} children + callback",
         lambda: chord([t.square.s(i) for i in range(n)], t.total.s()).apply_async(client=client)),
        (f"taskrail chunks, {n} items by 100",
         lambda: t.add.chunks(((i, i) for i in range(n)), 100).apply_async(client=client)),
    ]  # fmt: skip
    samples: dict[str, list[Sample]] = {label: [] for label, _ in cases}
    try:
        for _ in range(rounds):  # rounds interleave the cases, so a busy moment hurts them all alike
            for label, write in cases:
                samples[label].append(measure(conn, write))
        print(f"{'median of ' + str(rounds) + ' rounds':45s} {'wall ms':>8s} {'client CPU ms':>14s} {'server ms':>10s}")
        for label, runs in samples.items():
            wall, cpu, in_server = (statistics.median(getattr(r, f) for r in runs) * 1000
                                 for f in ("wall_s", "client_cpu_s", "server_s"))  # fmt: skip
            print(f"{label:45s} {wall:8.0f} {cpu:14.0f} {in_server:10.0f}")
    finally:
        conn.flushdb()
        if server is not None:
            os.kill(server.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
