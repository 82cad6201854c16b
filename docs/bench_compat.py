"""What RQ's and Celery's compatibility features cost per job: the table in docs/execution-modes.md.

    .venv/bin/python docs/bench_compat.py asyncio --jobs 3000 --rounds 3

Starts a private server; per round and variant, fills the queue with ``jobs`` no-op jobs (tests/bench_compat_tasks.py),
starts two worker processes in the given mode (asyncio and threads at concurrency 50, inline at 1), releases the
queue and times the drain. Variants: ``plain`` (taskrail's enqueue_many), ``rq_plain`` (RQ's ``Queue.enqueue``),
``on_success`` (RQ's enqueue with an ``on_success`` callback that does nothing), ``signals`` (three Celery task
signal receivers connected in the workers, doing nothing). Prints medians: jobs/s and worker CPU µs per job.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from rq import Callback, Queue  # noqa: E402
from rq.serializers import JSONSerializer  # noqa: E402

from config.embedded import start_server  # noqa: E402
from config.settings import load_settings  # noqa: E402
from tasks.core import keys  # noqa: E402
from tasks.core.client import Client  # noqa: E402
from tests import bench_compat_tasks as ct  # noqa: E402

RET_OK = 0
TICK = os.sysconf("SC_CLK_TCK")
MODES = {
    "asyncio": {"TASKRAIL_POOL": "asyncio", "TASKRAIL_CONCURRENCY": "50"},
    "threads": {"TASKRAIL_CONCURRENCY": "50"},
    "inline": {},
}
VARIANTS = ("plain", "rq_plain", "on_success", "signals")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def fill(conn: redis.Redis, client: Client, mode: str, variant: str, jobs: int) -> None:
    task = ct.noop if mode == "asyncio" else ct.sync_noop
    if variant in ("plain", "signals"):
        task.enqueue_many([()] * jobs, client=client)
        return
    queue = Queue(ct.QUEUE, connection=conn, serializer=JSONSerializer)
    callback = {"on_success": Callback(ct.on_ok)} if variant == "on_success" else {}
    with conn.pipeline() as pipe:
        for _ in range(jobs):
            queue.enqueue(task, pipeline=pipe, **callback)
        pipe.execute()


def drain(url: str, conn: redis.Redis, client: Client, mode: str, variant: str, jobs: int) -> tuple[float, float]:
    """(jobs/s, worker CPU µs per job) of one drain by two fresh workers."""
    conn.flushdb()
    fill(conn, client, mode, variant, jobs)
    queue_key, hold = keys.QUEUE.format(ct.QUEUE), keys.QUEUE.format(ct.QUEUE) + ":hold"
    conn.rename(queue_key, hold)
    env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": str(ROOT), "TASKRAIL_IMPORTS": "tests.bench_compat_tasks",
           "TASKRAIL_DATA_DIR": tempfile.mkdtemp(prefix="bench-compat-"), **MODES[mode]}  # fmt: skip
    if variant == "signals":
        env["BENCH_COMPAT_SIGNALS"] = "1"
    rq = str(Path(sys.executable).parent / "rq")
    procs = [subprocess.Popen([rq, "worker", "-w", "workers.Worker", "-c", "config.rq", "--name", f"compat-{i}",
                               ct.QUEUE], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for i in range(2)]  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while conn.scard("rq:workers") < 2:
            if time.monotonic() > deadline:
                raise SystemExit("the workers did not start within 30 s")
            time.sleep(0.05)
        cpu_before, start = sum(cpu_s(p.pid) for p in procs), time.monotonic()
        conn.rename(hold, queue_key)
        conn.lpush(keys.WAKE.format(ct.QUEUE), *[1] * 100)
        while conn.zcard(keys.FINISHED.format(ct.QUEUE)) < jobs:
            if conn.zcard(keys.FAILED.format(ct.QUEUE)):
                raise SystemExit(f"{variant}: a job failed")
            time.sleep(0.01)
        elapsed, cpu = time.monotonic() - start, sum(cpu_s(p.pid) for p in procs) - cpu_before
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    return jobs / elapsed, cpu / jobs * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=list(MODES))
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-compat-")), appendonly=False)
    conn = redis.Redis.from_url(server.url)
    client = Client(load_settings({"REDIS_URL": server.url}), conn)
    figures: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    try:
        for _ in range(options.rounds):
            for variant in VARIANTS:  # in turns, so the machine's load falls on each alike
                figures[variant].append(drain(server.url, conn, client, options.mode, variant, options.jobs))
    finally:
        conn.shutdown(nosave=True)
    print(f"| {options.mode}, {options.jobs:,} jobs, medians of {options.rounds} | jobs/s | worker CPU µs/job |")
    print("| --- | ---: | ---: |")
    for variant, runs in figures.items():
        rate, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
        print(f"| {variant} | {rate:,.0f} | {cpu:.1f} |")
    return RET_OK


if __name__ == "__main__":
    sys.exit(main())
