"""delay() one by one from one process, per checkout, next to redis-py's floor: the table in docs/benchmarks.md.

    .venv/bin/python docs/bench_producer.py /work/main /work/wt-p --calls 20000 --rounds 5

Starts a private server (or uses ``--redis-url``, whose database 0 it flushes), then, round after round, runs
each checkout in a fresh interpreter (``PYTHONPATH=<checkout>``) that times ``calls`` no-op ``delay()`` calls of
``tests.bench_tasks``' ``bench.noop`` task, then the floor: redis-py's ``evalsha`` of the same checkout's
enqueue script, with the keys and arguments of the same number of fresh jobs built beforehand (the work a
script-based enqueue cannot avoid: one round trip through redis-py, the script writing one new job). Figures
are medians over the rounds: jobs/s, wall and client CPU µs per call, and the server's CPU µs per call
(``INFO cpu``). The checkouts run in turns, so the machine's load falls on each alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RET_OK = 0

# Runs in the checkout's interpreter; prints one JSON object.
PROBE = r"""
import json, sys, time
import redis
from config.settings import load_settings
from tasks.core.client import Client
from tasks.core.scripting import load_command
from tests.bench_tasks import TASKS

url, calls = sys.argv[1], int(sys.argv[2])
conn = redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
client = Client(load_settings({"REDIS_URL": url}), conn)
noop = TASKS["noop"]


def server_cpu():
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def timed(call, items):
    conn.flushdb()
    cpu0, wall0, srv0 = time.process_time(), time.perf_counter(), server_cpu()
    for item in items:
        call(item)
    wall, cpu, srv = time.perf_counter() - wall0, time.process_time() - cpu0, server_cpu() - srv0
    return {"rate": len(items) / wall, "wall_us": wall / len(items) * 1e6, "cpu_us": cpu / len(items) * 1e6,
            "server_us": srv / len(items) * 1e6}


for _ in range(500):  # warm up: imports, the script loaded, the connection open
    noop.apply_async((), client=client)
delay = timed(lambda _: noop.apply_async((), client=client), range(calls))
script = load_command("enqueue")
script.ensure_loaded(conn)
jobs = [client._script_args(noop.build_job((), {}, client)) for _ in range(calls)]
sha = script.sha
floor = timed(lambda job: conn.evalsha(sha, len(job[0]), *job[0], *job[1]), jobs)
print(json.dumps({"delay": delay, "floor": floor}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("checkouts", nargs="+", type=Path, help="taskrail checkouts to compare, e.g. /work/main .")
    parser.add_argument("--calls", type=int, default=20_000, help="delay() calls per run (20000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each checkout, in turns (5)")
    parser.add_argument("--redis-url", help="an existing server (its database 0 is flushed)")
    args = parser.parse_args(argv)
    url, stop = args.redis_url, None
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from config.embedded import start_server

        server = start_server(Path(tempfile.mkdtemp(prefix="bench-producer-")), appendonly=False)
        url, stop = server.url, server.pid
    runs: dict[Path, list[dict[str, dict[str, float]]]] = {c: [] for c in args.checkouts}
    try:
        for round_ in range(args.rounds):
            for checkout in args.checkouts:
                env = {**os.environ, "PYTHONPATH": str(checkout.resolve()), "REDIS_URL": url}
                env = {k: v for k, v in env.items() if not k.startswith("TASKRAIL_")}
                out = subprocess.run([sys.executable, "-c", PROBE, url, str(args.calls)], env=env, check=True,
                                     capture_output=True, text=True, cwd=checkout).stdout  # fmt: skip
                runs[checkout].append(json.loads(out.splitlines()[-1]))
                print(f"round {round_ + 1}/{args.rounds} {checkout}: {runs[checkout][-1]['delay']['rate']:,.0f} jobs/s",
                      file=sys.stderr)  # fmt: skip
    finally:
        if stop is not None:
            os.kill(stop, 15)
    print(table(runs, args.calls))
    return RET_OK


def table(runs: dict[Path, list[dict[str, dict[str, float]]]], calls: int) -> str:
    """A markdown table of medians, a line per checkout and kind of call."""
    lines = [f"| checkout | call ({calls:,} one by one) | jobs/s | wall µs/call | client CPU µs/call | server CPU µs/call |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for checkout, results in runs.items():
        for kind, label in (("delay", "delay()"), ("floor", "redis-py evalsha (floor)")):
            med = {
                f: statistics.median(r[kind][f] for r in results) for f in ("rate", "wall_us", "cpu_us", "server_us")
            }
            lines.append(f"| {checkout} | {label} | {med['rate']:,.0f} | {med['wall_us']:.1f} | {med['cpu_us']:.1f} "
                         f"| {med['server_us']:.1f} |")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
