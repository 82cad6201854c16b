"""``taskrail bench --cost``: what one job costs, in CPU microseconds of the worker and of the server.

For each execution mode (inline, 50 threads, asyncio at concurrency 50, a fork per job) it enqueues no-op
jobs while the queue is held aside, starts the workers, then releases the queue and measures the drain: the
worker processes' CPU time (with their children, from /proc), the server's (``INFO cpu``), split between the
claim script, the finish script and every other command by their share of the time ``SLOWLOG`` logged (every
command logged for the drain), the commands the server ran (``INFO commandstats``, counting those inside
scripts) and the reads it served (``INFO stats`` ``total_reads_processed``: about one per round trip of any
client, heartbeats and this tool's polls included). Each figure is per job, the median of ``repeat`` drains.
From them, the ceiling on the machine's cores: the server is one thread (at most 1e6 / server µs jobs/s), and
worker plus server CPU share the cores (at most cores x 1e6 / (worker + server) µs).

The producer: client CPU µs per ``delay()`` one by one, next to redis-py's own cost of one EVALSHA of the
enqueue script with the same keys and arguments (the floor a script-based enqueue cannot go below).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench import workloads
from scripts.bench.harness import Harness, load_module, open_harness
from scripts.bench.systems import QUEUE, SYSTEMS, WORKERS
from tasks.core import keys
from tasks.core.scripting import load_command

__all__ = ["MODES", "JobCost", "ProducerCost", "format_cost", "measure_cost"]

# mode -> (worker environment, share of the jobs: a fork per job is a hundred times slower)
MODES: dict[str, tuple[dict[str, str], float]] = {
    "inline": ({"TASKRAIL_CONCURRENCY": "1"}, 1.0),
    "threads": ({"TASKRAIL_CONCURRENCY": "50"}, 1.0),
    "asyncio": (next(s for s in SYSTEMS if s.key == "taskrail_async").worker_env(), 1.0),
    "fork": ({"TASKRAIL_CONCURRENCY": "1", "TASKRAIL_ISOLATION": "fork"}, 0.02),
}
SCRIPTS = ("claim", "finish")
SLOWLOG = ("slowlog-log-slower-than", "slowlog-max-len")


@dataclass
class JobCost:
    """One mode's cost per job (medians)."""

    mode: str
    jobs: int
    worker_us: float
    server_us: float
    scripts_us: dict[str, float]  # claim, finish, other (every other command) -> server CPU µs per job
    commands: float  # commands the server ran per job, those inside scripts included
    reads: float  # reads the server served per job: about its round trips
    rate: float  # jobs/s of the drain

    def ceiling(self, cores: int) -> float:
        """Jobs/s the measured CPU allows on ``cores`` cores (the server being one thread)."""
        total = self.worker_us + self.server_us
        return min(1e6 / self.server_us if self.server_us else float("inf"), cores * 1e6 / total if total else 0.0)


@dataclass
class ProducerCost:
    """Client CPU µs per call: ``delay()`` and the bare EVALSHA of the enqueue script (the floor)."""

    calls: int
    delay_us: float
    evalsha_us: float


def measure_cost(out_dir: Path, jobs: int, repeat: int, redis_url: str | None,
                 modes: tuple[str, ...] = tuple(MODES)) -> tuple[list[JobCost], ProducerCost]:  # fmt: skip
    """Measure each of ``modes`` ``repeat`` times on ``jobs`` no-op jobs, and the producer on ``jobs`` calls."""
    system = next(s for s in SYSTEMS if s.key == "taskrail")
    names = {load_command(name).sha: name for name in SCRIPTS}
    costs = []
    with open_harness(redis_url, out_dir) as h:
        for mode in modes:
            env, share = MODES[mode]
            n = max(50, int(jobs * share))
            runs = [_drain(h, system, mode, n, rep, env, names) for rep in range(repeat)]
            costs.append(_median(runs))
        producer = _producer(h, max(200, jobs // 4))
    return costs, producer


def _drain(h: Harness, system: Any, mode: str, n: int, rep: int, env: dict[str, str],
           names: dict[str, str]) -> JobCost:  # fmt: skip
    h.flush()
    workloads.make_producer(system, h).many("noop", [()] * n)
    hold, wake = h.queue_key + ":hold", keys.WAKE.format(QUEUE)
    h.conn.rename(h.queue_key, hold)  # the workers start idle: their start-up is not counted
    h.conn.delete(wake)
    pids = h.start_workers(system, f"cost-{mode}-{rep}", env)
    kept = {name: h.conn.config_get(name)[name] for name in SLOWLOG}  # put back after: the server may be shared
    h.conn.config_set("slowlog-log-slower-than", 0)
    h.conn.config_set("slowlog-max-len", 1_000_000)
    try:
        h.conn.slowlog_reset()
        h.conn.config_resetstat()
        w0, s0, r0, t0 = _workers_cpu(pids), _server_cpu(h), _reads(h), time.monotonic()
        with h.conn.pipeline(transaction=False) as pipe:
            pipe.rename(hold, h.queue_key)
            pipe.lpush(wake, *[1] * WORKERS * 2)
            pipe.execute()
        end = h.wait_done(n)
        w1, s1, r1 = _workers_cpu(pids), _server_cpu(h), _reads(h)
        stats = h.conn.info("commandstats")
        slow = h.conn.slowlog_get(1_000_000)
    finally:
        h.stop_workers()
        for name, value in kept.items():
            h.conn.config_set(name, value)
    # SLOWLOG durations are wall time, which a busy machine stretches: they only split the server's CPU time.
    spent: dict[str, float] = {}
    for entry in slow:
        words = entry["command"].split()
        name = words[0].decode().lower()
        if name == "evalsha" and len(words) > 1:
            name = names.get(words[1].decode(), "other")
        name = name if name in ("claim", "finish") else "other"
        spent[name] = spent.get(name, 0.0) + entry["duration"]
    whole = sum(spent.values()) or 1.0
    server_us = (s1 - s0) / n * 1e6
    scripts = {name: server_us * d / whole for name, d in spent.items()}
    calls = sum(v["calls"] for k, v in stats.items() if not k.startswith(("config", "slowlog", "info")))
    return JobCost(mode, n, (w1 - w0) / n * 1e6, server_us, scripts, calls / n, (r1 - r0) / n,
                   n / max(end - t0, 1e-9))  # fmt: skip


def _median(runs: list[JobCost]) -> JobCost:
    def med(get: Callable[[JobCost], float]) -> float:
        return statistics.median(get(r) for r in runs)

    names = {name for r in runs for name in r.scripts_us}
    scripts = {name: med(lambda r, n=name: r.scripts_us.get(n, 0.0)) for name in names}  # type: ignore[misc]
    return JobCost(runs[0].mode, runs[0].jobs, med(lambda r: r.worker_us), med(lambda r: r.server_us), scripts,
                   med(lambda r: r.commands), med(lambda r: r.reads), med(lambda r: r.rate))  # fmt: skip


def _producer(h: Harness, calls: int) -> ProducerCost:
    """Client CPU per call, ``delay()`` against the bare EVALSHA it sends, interleaved in rounds."""
    h.flush()
    producer = workloads.TaskrailProducer(h)
    task = load_module("tests.bench_tasks").TASKS["noop"]
    client = producer.client
    spec = task.build_job((), {}, client)
    keys_, argv = client._script_args(spec)
    script = load_command("enqueue")
    script.ensure_loaded(h.conn)
    sha, nkeys = script.sha, len(keys_)

    def floor() -> None:  # the same job written again: the same work on the server
        h.conn.evalsha(sha, nkeys, *keys_, *argv)

    delays, floors = [], []
    for _ in range(3):
        delays.append(_cpu_per_call(lambda: task.apply_async((), client=client), calls))
        floors.append(_cpu_per_call(floor, calls))
    return ProducerCost(calls, statistics.median(delays), statistics.median(floors))


def _cpu_per_call(call: Callable[[], object], calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - start) / calls * 1e6


def _workers_cpu(pids: list[int]) -> float:
    """CPU seconds of the worker processes and their children (a fork per job: the children waited for)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        # utime, stime, cutime, cstime: the fork mode's work horses are reaped children
        total += sum(int(f) for f in fields[11:15]) / tick
    return total


def _server_cpu(h: Harness) -> float:
    info = h.conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _reads(h: Harness) -> int:
    return int(h.conn.info("stats").get("total_reads_processed", 0))


def format_cost(costs: list[JobCost], producer: ProducerCost, cores: int) -> str:
    """The markdown tables of the measured costs."""
    shown = ("claim", "finish", "other")
    head = ["mode", "jobs", "worker CPU µs", "server CPU µs", "of it claim", "finish", "other commands",
            "commands", "reads (≈ round trips)", f"ceiling on {cores} cores (jobs/s)", "drain (jobs/s)"]  # fmt: skip
    rows = [" | ".join(head), " | ".join(["---"] + ["---:"] * (len(head) - 1))]
    for c in costs:
        cells = [c.mode, f"{c.jobs:,}", f"{c.worker_us:.1f}", f"{c.server_us:.1f}",
                 *[f"{c.scripts_us.get(n, 0.0):.1f}" for n in shown], f"{c.commands:.1f}", f"{c.reads:.2f}",
                 f"{c.ceiling(cores):,.0f}", f"{c.rate:,.0f}"]  # fmt: skip
        rows.append(" | ".join(cells))
    table = "\n".join(f"| {row} |" for row in rows)
    over = producer.delay_us - producer.evalsha_us
    own = (f"taskrail's own {over:.1f} µs" if over >= 0 else
           f"{-over:.1f} µs below it: delay() sends its command packed once per task, not through redis-py")  # fmt: skip
    return (
        f"{table}\n\nproducer, one by one ({producer.calls:,} calls): delay() {producer.delay_us:.1f} µs client CPU "
        f"per call; redis-py's EVALSHA of the same script and arguments {producer.evalsha_us:.1f} µs (the floor); "
        f"{own}"
    )
