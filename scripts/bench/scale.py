"""``taskrail bench --scale``: what each per-job operation costs as the backlog grows.

With no worker running, the bench queue is filled to each size (a third each of priority 0, no
priority (5) and 9, in interleaved batches), then every operation runs ``samples`` times against that
backlog. Each call's time is the server's own (SLOWLOG at threshold 0: what a script blocks the
server for), so the figures hold on a loaded machine; the slowest script of each operation is kept.
A last phase fills the schedule with delayed jobs instead. Memory: bytes of server memory per waiting
job (hash, list entry, indexes) for taskrail and for plain RQ's own ``enqueue_many``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from config.settings import load_settings
from scripts.bench.harness import ROOT, Harness, load_module, open_harness
from scripts.bench.systems import QUEUE
from tasks.core import keys
from tasks.core.client import Client
from tasks.core.protocol import DATA_MAX_BYTES
from tasks.core.scripting import load_command

__all__ = ["OPERATIONS", "ScaleOptions", "ScaleResults", "format_scale", "run_scale", "scale_command"]

MIX = (0, None, 9)  # the backlog's priorities, in turn per fill batch
FILL_BATCH = 1000
WORKER = "scale-w"

# key -> (label, complexity in the backlog N; m = jobs in the call)
OPERATIONS: dict[str, tuple[str, str]] = {
    "enqueue": ("enqueue one job (apply_async, priority 0/5/9)", "O(1)"),
    "map": ("enqueue 100 jobs (Task.map, one call)", "O(m)"),
    "canvas": ("enqueue a chain of 3 (canvas)", "O(m)"),
    "claim": ("claim one job", "O(log N) (started registry)"),
    "settle": ("settle one job (finish ok)", "O(log N) (registries)"),
    "retry": ("settle one job as a retry in 60 s", "O(log N) (schedule)"),
    "recover": ("recover a dead worker's job (reap)", "O(log N)"),
    "revoke": ("revoke one waiting job", "O(1) (claim drops it)"),
    "enqueue_delayed": ("enqueue one delayed job (countdown)", "O(log N) (schedule)"),
    "promote": ("promote 10 due delayed jobs", "O(log N + m)"),
}
WAITING_OPS = ("enqueue", "map", "canvas", "claim", "settle", "retry", "recover", "revoke")
DELAYED_OPS = ("enqueue_delayed", "promote")


@dataclass(frozen=True)
class ScaleOptions:
    """Backlog sizes, samples per operation and size, the delayed backlog, and the memory run's size."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    samples: int = 200
    delayed: int = 1_000_000
    memory_jobs: int = 100_000

    @classmethod
    def quick(cls) -> ScaleOptions:
        return cls(sizes=(1_000, 10_000), samples=50, delayed=10_000, memory_jobs=5_000)


@dataclass
class ScaleResults:
    """Per operation and backlog: server microseconds per call (median, p99, max) and the memory figures."""

    rows: dict[str, dict[int, dict[str, float]]] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)  # system -> bytes per waiting job
    notes: list[str] = field(default_factory=list)


class Backlog:
    """The producer's and a worker's calls against one bench server, each timed by SLOWLOG."""

    def __init__(self, harness: Harness) -> None:
        self.conn: redis.Redis = harness.conn
        self.client = Client(load_settings({"REDIS_URL": harness.url}), harness.conn)
        self.task = load_module("tests.bench_tasks").TASKS["noop"]
        self.claim, self.finish = load_command("claim"), load_command("finish")
        self.reap, self.revoke, self.promote = (
            load_command("reap"),
            load_command("flow_revoke"),
            load_command("promote"),
        )
        self.filled = 0

    def fill(self, total: int, **options: Any) -> None:
        """Enqueue jobs until ``total`` were sent, in batches of ``FILL_BATCH``, priorities in turn."""
        while self.filled < total:
            n = min(FILL_BATCH, total - self.filled)
            priority = MIX[(self.filled // FILL_BATCH) % len(MIX)]
            extra = {} if priority is None else {"priority": priority}
            self.task.map([()] * n, client=self.client, **extra, **options)
            self.filled += n

    def timed(self, op: Operation, samples: int) -> list[float]:
        """Server microseconds of every script ``op``'s act ran (its preparation untimed), ``samples`` times."""
        self.conn.config_set("slowlog-max-len", 128)
        durations: list[float] = []
        try:
            for i in range(samples):
                prepared = op.prepare(i) if op.prepare else i
                self.conn.config_set("slowlog-log-slower-than", 0)
                self.conn.slowlog_reset()
                op.act(prepared)
                self.conn.config_set("slowlog-log-slower-than", -1)
                durations += [e["duration"] for e in self.conn.slowlog_get(128) if _is_script(e["command"])]
        finally:
            self.conn.config_set("slowlog-log-slower-than", 10_000)
        return durations

    def claim_one(self, worker: str = WORKER) -> str:
        args = [worker, 1, time.time(), "", time.time() + 3600, 100, "strict", 0, 0, DATA_MAX_BYTES, 900, 1, 0, 0]
        rows = self.claim(self.conn, [keys.CLAIMS.format(worker), keys.PAUSED, QUEUE], args)[:-1]
        return str(rows[0][0].decode())

    def settle(self, job_id: str, kind: str, retry_at: float = 0) -> None:
        record = [job_id, QUEUE, kind, "", 500, retry_at, "", "", 0.1, "bench.noop", "le_5ms", 0]
        now = time.time()
        self.finish(self.conn, [keys.CLAIMS.format(WORKER)], [WORKER, now, "", 100, int(now // 60), *record])

    def dead_worker_holding_one(self, i: int) -> None:
        self.claim_one(f"scale-dead-{i}")  # it never heartbeats: the reap takes it for dead

    def reap_now(self, _: object) -> None:
        self.reap(self.conn, [keys.WORKERS], [time.time(), "", 100, int(time.time() // 60), 5, 900])


@dataclass(frozen=True)
class Operation:
    """One measured operation: ``act(prepare(i))``, only the act timed."""

    act: Callable[[Any], object]
    prepare: Callable[[int], Any] | None = None


def _is_script(command: Any) -> bool:
    parts = command.split() if isinstance(command, bytes) else [command]
    return bool(parts) and parts[0].lower() in (b"evalsha", b"eval", "evalsha", "eval")


def _operations(b: Backlog) -> dict[str, Operation]:
    noop, client = b.task, b.client
    now = time.time
    return {
        "enqueue": Operation(lambda i: noop.apply_async((), client=client, priority=(0, 5, 9)[i % 3])),
        "map": Operation(lambda i: noop.map([()] * 100, client=client, priority=(0, 5, 9)[i % 3])),
        "canvas": Operation(lambda i: (noop.si() | noop.si() | noop.si()).apply_async(client=client)),
        "claim": Operation(lambda i: b.claim_one()),
        "settle": Operation(lambda job_id: b.settle(job_id, "ok"), lambda i: b.claim_one()),
        "retry": Operation(lambda job_id: b.settle(job_id, "retry", now() + 60), lambda i: b.claim_one()),
        "recover": Operation(b.reap_now, b.dead_worker_holding_one),
        "revoke": Operation(
            lambda job_id: b.revoke(b.conn, [], [now(), "", 100, job_id]),
            lambda i: noop.apply_async((), client=client).id,
        ),
        "enqueue_delayed": Operation(lambda i: noop.apply_async((), client=client, countdown=86_400)),
        "promote": Operation(
            lambda _: b.promote(b.conn, [QUEUE], [now() + 1, "", 10]), lambda i: b.fill(b.filled + 10, countdown=0.001)
        ),
    }


def _summary(durations: list[float]) -> dict[str, float]:
    ordered = sorted(durations)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_us": statistics.median(ordered), "p99_us": p99, "max_us": ordered[-1], "calls": len(ordered)}


def run_scale(harness: Harness, options: ScaleOptions, progress: Callable[[str], None] = print) -> ScaleResults:
    """Every operation at every backlog size, then the delayed phase, then memory per job."""
    results = ScaleResults(rows={op: {} for op in OPERATIONS})
    harness.flush()
    backlog = Backlog(harness)
    ops = _operations(backlog)
    for size in options.sizes:
        progress(f"filling to {size:,} waiting jobs")
        backlog.fill(size)
        for op in WAITING_OPS:
            progress(f"{size:,} waiting: {op}")
            results.rows[op][size] = _summary(backlog.timed(ops[op], options.samples))
    harness.flush()
    backlog = Backlog(harness)
    ops = _operations(backlog)
    progress(f"filling the schedule with {options.delayed:,} delayed jobs")
    backlog.fill(options.delayed, countdown=86_400)
    for op in DELAYED_OPS:
        progress(f"{options.delayed:,} delayed: {op}")
        results.rows[op][options.delayed] = _summary(backlog.timed(ops[op], options.samples))
    results.memory = memory_per_job(harness, options.memory_jobs)
    return results


def memory_per_job(harness: Harness, jobs: int) -> dict[str, float]:
    """Bytes of server memory per waiting job: taskrail (priorities mixed) and RQ's ``enqueue_many``."""
    out: dict[str, float] = {}
    for system in ("rq", "taskrail"):
        harness.flush()
        before = int(harness.conn.info("memory")["used_memory"])
        if system == "taskrail":
            Backlog(harness).fill(jobs)
        else:
            func = load_module("tests.bench_jobs").noop
            queue = Queue(QUEUE, connection=harness.conn)
            for start in range(0, jobs, FILL_BATCH):
                n = min(FILL_BATCH, jobs - start)
                queue.enqueue_many([Queue.prepare_data(func, args=()) for _ in range(n)])
        out[system] = (int(harness.conn.info("memory")["used_memory"]) - before) / jobs
    return out


def format_scale(results: ScaleResults) -> str:
    """The markdown table: per operation its complexity, then median / p99 / slowest server µs per backlog."""
    sizes = sorted({n for by_size in results.rows.values() for n in by_size})
    header = ["operation", "complexity", *[f"{_size(n)} median / p99 / max (µs)" for n in sizes]]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * 2 + [" ---: "] * len(sizes)) + "|"]
    for op, (label, complexity) in OPERATIONS.items():
        by_size = results.rows.get(op, {})
        if not by_size:
            continue
        cells = [_cell(by_size.get(n)) for n in sizes]
        lines.append("| " + " | ".join([label, complexity, *cells]) + " |")
    if results.memory:
        mem = ", ".join(f"{system} {value:,.0f}" for system, value in results.memory.items())
        lines += ["", f"Server memory per waiting job (bytes): {mem}."]
    lines += [f"note: {note}" for note in results.notes]
    return "\n".join(lines)


def _cell(row: dict[str, float] | None) -> str:
    if not row:
        return "-"
    return f"{row['median_us']:,.0f} / {row['p99_us']:,.0f} / {row['max_us']:,.0f}"


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def write_scale_chart(results: ScaleResults, path: Path) -> Path:
    """Median server time per operation against the backlog, both axes logarithmic."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for op, by_size in results.rows.items():
        if by_size:
            sizes = sorted(by_size)
            label = f"{OPERATIONS[op][0]}: {OPERATIONS[op][1]}"
            ax.plot(sizes, [by_size[n]["median_us"] for n in sizes], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs waiting (delayed, for the delayed operations)")
    ax.set_ylabel("server time per call, median (µs)")
    ax.set_title("taskrail: cost per operation as the backlog grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scale_command(out_dir: Path, quick: bool, redis_url: str | None, command: str) -> tuple[ScaleResults, Path]:
    """``taskrail bench --scale``: run, then write results-scale.json, results-scale.md and scale.png."""
    options = ScaleOptions.quick() if quick else ScaleOptions()
    started = time.monotonic()
    with open_harness(redis_url, out_dir) as harness:
        results = run_scale(harness, options, progress=lambda text: print(text, flush=True))
        server = harness.server_version()
    results.notes.append(
        f"{command}: {time.monotonic() - started:.0f} s, {server}, {options.samples} calls per operation and size"
    )
    if not (ROOT / "bench-peers" / "node_modules" / "bullmq").exists():
        results.notes.append("BullMQ not measured: run `make bench-peers` to install it")
    (out_dir / "results-scale.json").write_text(json.dumps(asdict(results), indent=2))
    (out_dir / "results-scale.md").write_text(format_scale(results) + "\n")
    return results, write_scale_chart(results, out_dir / "scale.png")
