"""``taskrail bench --long-run N``: N jobs of a mixed workload through 2 real workers, memory over time, keys left.

The producer enqueues cycles of 12 jobs (3 plain, 2 prioritized at 0 and 9, 1 delayed by a second, 1 failing
its first attempt and retried, 1 rate-limited under one of a hundred limit keys, and a chord of 3 parts and
its callback: tests/longrun_tasks.py), keeping at most ``backlog`` jobs unfinished, while 2 ``rq worker -w
workers.Worker`` processes run them with short result and failure TTLs. At every 1% of the jobs done it records the
jobs done, the server's ``used_memory`` and each worker's resident memory. Drift compares the median of
each series just after warm-up (20-30% of the jobs) with its median at the end (the last 10%). Once the
results have expired, every key in the database is listed: each must match the fixed set (``FIXED``, named
below), any other is left behind.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

from config.errors import BenchError
from config.settings import load_settings
from scripts.bench.harness import Harness, load_module, open_harness
from scripts.bench.systems import JSON_SERIALIZER, RQ_WORKER, WORKERS
from scripts.bench.workloads import rss_mb
from tasks import chord
from tasks.core import keys
from tasks.core.client import Client

__all__ = ["FIXED", "LongRunOptions", "LongRunResults", "format_longrun", "long_run", "run_long"]

TASKS_MODULE = "tests.longrun_tasks"
CYCLE = 12  # jobs per cycle of the mix
BATCH = 50  # cycles per enqueue batch
POLL_S = 0.02
LIMIT_KEYS = 100  # distinct rate-limit keys, in turn
WARMUP = (0.2, 0.3)  # the share of jobs done whose samples are the baseline
END = 0.9  # samples from here to the end are the end state


def _fixed(template: str, part: str = r"[^:]+") -> str:
    return re.escape(template).replace(re.escape("{}"), part)


# The keys a run may leave once its results have expired: each is one per queue, worker, task or minute.
FIXED: tuple[tuple[str, str], ...] = (
    (_fixed(keys.QUEUES), "RQ's set of queue names"),
    (_fixed(keys.RQ_WORKERS), "RQ's set of live workers"),
    (_fixed(keys.RQ_QUEUE_WORKERS), "RQ's live workers per queue"),
    (_fixed(keys.RQ_WORKER), "one hash per live worker (RQ's)"),
    (_fixed(keys.WORKERS), "taskrail's set of live workers"),
    (_fixed(keys.HEARTBEAT), "a live worker's heartbeat (expires in seconds)"),
    (_fixed(keys.LEADER), "the maintenance leader's lease (expires)"),
    (_fixed(keys.EVENTS), "a queue's event stream (capped at events_maxlen)"),
    (_fixed(keys.STATS), "a queue's counters per minute (expire after 2 hours)"),
    (_fixed(keys.TASK_STATS), "one statistics hash per task"),
    (_fixed(keys.TASKS), "the names of the tasks with statistics"),
    (_fixed(keys.WAKE), "a queue's wake-up tokens (trimmed to 1,000)"),
    (_fixed(keys.WEIGHTS), "weighted round-robin credit per worker (expires after a day)"),
)
_FIXED = [re.compile(pattern + "$") for pattern, _ in FIXED]


@dataclass(frozen=True)
class LongRunOptions:
    """Jobs to run, the unfinished jobs the producer allows, the TTLs and the sampling period."""

    jobs: int
    backlog: int = 20_000
    result_ttl_s: int = 3
    samples: int = 100  # one per 1% of the jobs done
    expire_wait_s: float = 120.0  # after the last job: how long results may take to expire


@dataclass
class LongRunResults:
    """samples: (seconds, jobs done, server bytes, worker MB...) rows; drift_pct per series; keys left."""

    jobs: int
    samples: list[list[float]] = field(default_factory=list)
    drift_pct: dict[str, float] = field(default_factory=dict)
    fixed_keys: dict[str, int] = field(default_factory=dict)  # FIXED pattern's description -> keys matching
    left_behind: list[str] = field(default_factory=list)
    expired_used_bytes: int = 0  # the server's used_memory once the results expired
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)


class Mix:
    """The producer: cycles of the mix, as few round trips as it takes."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.t = load_module(TASKS_MODULE)
        self.cycles = 0

    def send(self, cycles: int) -> int:
        """Enqueue ``cycles`` cycles; returns the jobs they hold."""
        t, c, n = self.t, self.client, cycles
        t.plain.enqueue_many([()] * 3 * n, client=c)
        t.plain.enqueue_many([()] * n, client=c, priority=0)
        t.plain.enqueue_many([()] * n, client=c, priority=9)
        t.plain.enqueue_many([()] * n, client=c, countdown=1)
        t.flaky.enqueue_many([()] * n, client=c)
        t.limited.enqueue_many([(f"k{(self.cycles + i) % LIMIT_KEYS}",) for i in range(n)], client=c)
        for _ in range(n):
            chord([t.part.s(k) for k in range(3)], t.total.s()).apply_async(client=c)
        self.cycles += n
        return n * CYCLE


def done_count(conn: redis.Redis, tasks: tuple[str, ...]) -> tuple[int, int]:
    """(completed, failed) over the run's tasks, from their statistics hashes."""
    with conn.pipeline(transaction=False) as pipe:
        for name in tasks:
            pipe.hmget(keys.TASK_STATS.format(name), "completed", "failed")
        rows = pipe.execute()
    return sum(int(r[0] or 0) for r in rows), sum(int(r[1] or 0) for r in rows)


def classify(conn: redis.Redis) -> tuple[dict[str, int], list[str]]:
    """Every key of the database: counts per FIXED entry, and the names matching none (left behind)."""
    fixed = {description: 0 for _, description in FIXED}
    left: list[str] = []
    for raw in conn.scan_iter(count=1000):
        name = raw.decode(errors="replace")
        match = next((i for i, pattern in enumerate(_FIXED) if pattern.match(name)), None)
        if match is None:
            left.append(name)
        else:
            fixed[FIXED[match][1]] += 1
    return fixed, sorted(left)


def drift(samples: list[list[float]], column: int, total: int) -> float:
    """Percent change of a column's median from just after warm-up to the end of the run."""
    after = [row for row in samples if row[1] >= WARMUP[0] * total]
    base = [row[column] for row in after if row[1] < WARMUP[1] * total] or [after[0][column]]
    end = [row[column] for row in samples if row[1] >= END * total]
    first = statistics.median(base)
    return (statistics.median(end) - first) / first * 100


class Progress:
    """A one-line bar on a terminal, a line per tenth otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.tty, self.shown = total, sys.stdout.isatty(), -1

    def __call__(self, done: int, rate: float, server_mb: float, rss: list[float]) -> None:
        share = done / self.total
        text = (f"[{'#' * int(share * 30):<30}] {share:4.0%} {done:,}/{self.total:,} jobs, {rate:,.0f}/s, "
                f"server {server_mb:.1f} MB, workers {' / '.join(f'{mb:.1f}' for mb in rss)} MB")  # fmt: skip
        if self.tty:
            print("\r" + text, end="" if done < self.total else "\n", flush=True)
        elif int(share * 10) > self.shown:
            self.shown = int(share * 10)
            print(text, flush=True)


def run_long(harness: Harness, options: LongRunOptions) -> LongRunResults:
    """Run the mix through ``WORKERS`` workers, sampling memory; then wait for expiry and list the keys."""
    ttl = {"TASKRAIL_RESULT_TTL_S": str(options.result_ttl_s), "TASKRAIL_FAILURE_TTL_S": str(options.result_ttl_s)}
    settings = load_settings({"REDIS_URL": harness.url, **ttl})
    mix = Mix(Client(settings, harness.conn))
    tasks: tuple[str, ...] = mix.t.TASKS
    total = -(-options.jobs // CYCLE) * CYCLE
    harness.flush()
    pids = start_workers(harness, {"TASKRAIL_IMPORTS": TASKS_MODULE, **ttl})
    results, bar = LongRunResults(jobs=total), Progress(total)
    started, every = time.monotonic(), max(1, total // options.samples)
    sent = done = 0
    next_sample = 0
    while done < total:
        done, failed = done_count(harness.conn, tasks)
        if failed:
            raise BenchError(f"{failed} long-run job(s) failed; see the worker logs in {harness.log_dir}")
        if sent < total and sent - done < options.backlog:  # one batch per poll: the samples keep their pace
            sent += mix.send(min(BATCH, (total - sent) // CYCLE))
        if done >= next_sample:
            row = [
                time.monotonic() - started,
                done,
                harness.conn.info("memory")["used_memory"],
                *(rss_mb(p) for p in pids),
            ]
            results.samples.append(row)
            bar(done, done / max(row[0], 1e-9), row[2] / 1e6, row[3:])
            next_sample = min(total, (done // every + 1) * every)
        check_alive(harness, done, total)
        time.sleep(POLL_S)
    results.duration_s = time.monotonic() - started
    if done != total:
        raise BenchError(f"{done:,} long-run jobs completed where {total:,} were enqueued: a job ran twice")
    names = ["server used_memory", *(f"worker {i + 1} RSS" for i in range(len(pids)))]
    results.drift_pct = {name: drift(results.samples, 2 + i, total) for i, name in enumerate(names)}
    results.fixed_keys, results.left_behind = wait_expired(harness, options)
    results.expired_used_bytes = int(harness.conn.info("memory")["used_memory"])
    return results


def start_workers(harness: Harness, env: dict[str, str]) -> list[int]:
    commands = [
        [RQ_WORKER, "worker", "-u", harness.url, "-w", "workers.Worker", "-S", JSON_SERIALIZER, "-n", f"longrun-{i}",
         "longrun"]
        for i in range(WORKERS)
    ]  # fmt: skip

    def ready() -> bool:
        return int(harness.conn.scard(keys.RQ_WORKERS)) >= WORKERS

    return harness.start(commands, "longrun", harness.worker_env(env), ready, "the long run's workers to start")


def check_alive(harness: Harness, done: int, total: int) -> None:
    dead = [p for p in harness.procs if p.poll() is not None]
    if dead:
        raise BenchError(f"a worker exited with code {dead[0].returncode} ({done:,} of {total:,} jobs done); "
                         f"see the worker logs in {harness.log_dir}")  # fmt: skip


def wait_expired(harness: Harness, options: LongRunOptions) -> tuple[dict[str, int], list[str]]:
    """Poll until no key is left beyond the fixed set (the workers still running), or the wait is over."""
    deadline = time.monotonic() + options.result_ttl_s + options.expire_wait_s
    while True:
        fixed, left = classify(harness.conn)
        if not left or time.monotonic() > deadline:
            return fixed, left
        time.sleep(0.5)


def format_longrun(results: LongRunResults) -> str:
    """The markdown summary: jobs, time, memory at the baseline and the end, drift, the keys left."""
    first, last = results.samples[0], results.samples[-1]
    rate = results.jobs / max(results.duration_s, 1e-9)
    lines = [f"{results.jobs:,} jobs in {results.duration_s:,.0f} s ({rate:,.0f} jobs/s), "
             f"{len(results.samples)} samples", "", "| series | first sample | last sample | drift after warm-up |",
             "| --- | ---: | ---: | ---: |"]  # fmt: skip
    for i, (name, pct) in enumerate(results.drift_pct.items()):
        scale = 1e6 if i == 0 else 1.0
        lines.append(f"| {name} (MB) | {first[2 + i] / scale:.1f} | {last[2 + i] / scale:.1f} | {pct:+.1f}% |")
    lines += ["", f"server used_memory once the results expired: {results.expired_used_bytes / 1e6:.1f} MB"]
    lines += ["", "| key left once results expired | keys |", "| --- | ---: |"]
    lines += [f"| {description} | {count} |" for description, count in results.fixed_keys.items() if count]
    lines += ["", f"left behind: {', '.join(results.left_behind[:20]) if results.left_behind else 'none'}"]
    lines += [f"note: {note}" for note in results.notes]
    return "\n".join(lines)


def write_longrun_chart(results: LongRunResults, path: Path) -> Path:
    """Server memory and each worker's RSS against the jobs done."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    done = [row[1] for row in results.samples]
    top.plot(done, [row[2] / 1e6 for row in results.samples], label="server used_memory")
    for i in range(3, len(results.samples[0])):
        bottom.plot(done, [row[i] for row in results.samples], label=f"worker {i - 2} RSS")
    top.set_ylabel("server (MB)")
    bottom.set_ylabel("worker RSS (MB)")
    bottom.set_xlabel("jobs done")
    for ax in (top, bottom):
        ax.axvspan(WARMUP[0] * results.jobs, WARMUP[1] * results.jobs, alpha=0.1, label="baseline")
        ax.axvspan(END * results.jobs, results.jobs, alpha=0.1, color="orange", label="end")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    top.set_title(f"Long run: {results.jobs:,} jobs of the mix through {WORKERS} workers")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def long_run(out_dir: Path, jobs: int, redis_url: str | None, command: str) -> LongRunResults:
    """``taskrail bench --long-run N``: run, then write results-longrun.json, results-longrun.md, longrun.png."""
    with open_harness(redis_url, out_dir) as harness:
        server = harness.server_version()
        results = run_long(harness, LongRunOptions(jobs=jobs))
    results.notes.append(f"{command}: {server}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    (out_dir / "results-longrun.json").write_text(json.dumps(asdict(results), indent=2))
    (out_dir / "results-longrun.md").write_text(format_longrun(results) + "\n")
    write_longrun_chart(results, out_dir / "longrun.png")
    return results
