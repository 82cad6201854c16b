"""Enqueue time of a 10,000-child chord next to plain RQ's ``Queue.enqueue_many`` of 10,000 jobs.

Run from the repository root: ``.venv/bin/python docs/bench_canvas.py [N] [ROUNDS]``. It starts its own
server in a temporary folder (or uses ``REDIS_URL`` when set, flushing database 0 between rounds) and
prints the median of ``ROUNDS`` runs for each way of writing N jobs. Nothing runs the jobs.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
from rq import Queue
from rq.serializers import JSONSerializer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import start_server
from config.settings import load_settings
from tasks import chord, group
from tasks.client import Client
from tests import tasks_canvas as t


def timed(conn: redis.Redis, rounds: int, write: Callable[[], object]) -> float:
    """Median seconds of ``write`` over ``rounds`` runs, each on an empty database."""
    times = []
    for _ in range(rounds):
        conn.flushdb()
        started = time.perf_counter()
        write()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


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
        (f"taskrail Task.map, {n} jobs", lambda: t.square.map([(i,) for i in range(n)], client=client)),
        (f"taskrail group, {n} children", lambda: group(t.square.s(i) for i in range(n)).apply_async(client=client)),
        (f"taskrail chord, {n} children + callback",
         lambda: chord([t.square.s(i) for i in range(n)], t.total.s()).apply_async(client=client)),
    ]  # fmt: skip
    try:
        for label, write in cases:
            print(f"{label:45s} {timed(conn, rounds, write) * 1000:8.0f} ms (median of {rounds})")
    finally:
        conn.flushdb()
        if server is not None:
            os.kill(server.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
