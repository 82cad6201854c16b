"""``taskrail bench --scale``: what each per-job operation costs as the backlog grows.

With no worker running, the bench queue is filled to each size (a third each of priority 0, no
priority (5) and 9, in interleaved batches), then every operation runs ``samples`` times against that
backlog. Each call's time is the server's own (SLOWLOG at threshold 0: what a script blocks the
server for), so the figures hold on a loaded machine; the slowest script of each operation is kept.
A last phase fills the schedule with delayed jobs instead. Memory: bytes of server memory per waiting
job (hash, list entry, indexes) for taskrail, for plain RQ's own ``enqueue_many`` and for BullMQ's ``addBulk``
when ``make bench-peers`` installed it.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from config.errors import BenchError
from config.settings import load_settings
from scripts.bench.harness import Harness, load_module, open_harness
from scripts.bench.peers import DRIVERS, PEER_DIR, installed
from scripts.bench.systems import QUEUE
from tasks.core import keys
from tasks.core.client import Client
from tasks.core.protocol import DATA_MAX_BYTES
from tasks.core.scripting import LUA_DIR, load_command

__all__ = ["OPERATIONS", "ScaleOptions", "ScaleResults", "format_scale", "run_scale", "scale_command"]

MIX = (0, None, 9)  # the backlog's priorities, in turn per fill batch
FILL_BATCH = 1000
WORKER = "scale-w"
RQ_QUEUE = "bench-rq"  # plain RQ's backlog, beside taskrail's in the same database
UNTIMED = (b"config", b"slowlog", b"info")  # the bench's own commands
EVAL_HEADER = re.compile(rb"(?i)eval\s+--\s*(\w+):")

# key -> (label, complexity in the backlog N; m = jobs in the call)
OPERATIONS: dict[str, tuple[str, str]] = {
    "enqueue": ("enqueue one job (priority 0/5/9 in turn)", "O(1)"),
    "map": ("enqueue 10 jobs in one call (Task.enqueue_many)", "O(m)"),
    "canvas": ("enqueue a chain of 3 (canvas)", "O(m)"),
    "claim": ("claim one job", "O(log R), R = running jobs"),
    "settle": ("settle one job (finish ok)", "O(log F), F = finished jobs kept"),
    "retry": ("settle one job as a retry in 60 s", "O(log D), D = delayed jobs"),
    "recover": ("recover a dead worker's job (reap)", "O(1) per job (+ workers)"),
    "revoke": ("revoke one waiting job", "O(1) (claim drops it)"),
    "enqueue_delayed": ("enqueue one delayed job (countdown)", "O(log D)"),
    "promote": ("promote 10 due delayed jobs", "O(log D + m)"),
}
RQ_LABELS = {"enqueue": "Queue.enqueue, one job", "map": "Queue.enqueue_many, 10 jobs"}
WAITING_OPS = ("enqueue", "map", "canvas", "claim", "settle", "retry", "recover", "revoke")
DELAYED_OPS = ("enqueue_delayed", "promote")


@dataclass(frozen=True)
class ScaleOptions:
    """Backlog sizes, calls per operation and size, and the delayed backlog."""

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    samples: int = 200
    delayed: int = 1_000_000
    rq_max: int = 100_000  # plain RQ's backlog stops here: its fill is ~1,000 jobs/s on a busy 2-core machine

    @classmethod
    def quick(cls) -> ScaleOptions:
        return cls(sizes=(1_000, 10_000), samples=50, delayed=10_000, rq_max=10_000)


@dataclass
class ScaleResults:
    """rows[op][system][size]: server microseconds per call (median, p99) and its slowest command or script;
    memory[system][size]: bytes of server memory per waiting job."""

    rows: dict[str, dict[str, dict[int, dict[str, Any]]]] = field(default_factory=dict)
    memory: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    """One measured operation: ``act(prepare(i))``, only the act timed."""

    act: Callable[[Any], object]
    prepare: Callable[[int], Any] | None = None


def script_names() -> dict[str, str]:
    """The SHA of each command script -> its name (``claim``, ``finish``, ...), to name SLOWLOG's entries."""
    return {load_command(path.stem).sha: path.stem for path in sorted(LUA_DIR.glob("*.lua"))}


def timed(conn: redis.Redis, op: Operation, samples: int) -> dict[str, Any]:
    """Median and p99 of the server time of ``samples`` calls (every command a call sent, from SLOWLOG at
    threshold 0), and the slowest single command or script among them, with its name."""
    conn.config_set("slowlog-max-len", 1024)
    names = script_names()
    totals: list[float] = []
    slowest, slowest_name, over_1ms = 0.0, "", 0
    try:
        for i in range(samples):
            prepared = op.prepare(i) if op.prepare else i
            conn.config_set("slowlog-log-slower-than", 0)
            conn.slowlog_reset()
            op.act(prepared)
            conn.config_set("slowlog-log-slower-than", -1)
            spans = [(e["duration"], e["command"]) for e in conn.slowlog_get(1024) if not _untimed(e["command"])]
            totals.append(sum(duration for duration, _ in spans))
            over_1ms += any(duration > 1000 for duration, _ in spans)
            for duration, command in spans:
                if duration > slowest:
                    slowest, slowest_name = duration, _name(command, names)
    finally:
        conn.config_set("slowlog-log-slower-than", 10_000)
    ordered = sorted(totals)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"median_us": statistics.median(ordered), "p99_us": p99, "slowest_us": slowest, "slowest": slowest_name,
            "over_1ms": over_1ms}  # fmt: skip


def _words(command: Any) -> list[bytes]:
    return (command if isinstance(command, bytes) else str(command).encode()).split(b" ", 2)


def _untimed(command: Any) -> bool:
    return _words(command)[0].lower() in UNTIMED


def _name(command: Any, names: dict[str, str]) -> str:
    """A SLOWLOG entry's script name (``claim.lua``), or its command (``LPUSH``)."""
    words = _words(command)
    if words[0].lower() == b"evalsha" and len(words) > 1:
        return names.get(words[1].decode(errors="replace"), "script") + ".lua"
    header = EVAL_HEADER.match(b" ".join(words))  # a first call: EVAL with the source, whose header names it
    return header.group(1).decode() + ".lua" if header else words[0].decode(errors="replace").upper()


def _used(conn: redis.Redis) -> int:
    return int(conn.info("memory")["used_memory"])


class Backlog:
    """taskrail's producer and a worker's scripts against the bench server."""

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
        # The bench's own worker holds every job it claimed: alive, so "recover" reaps one dead worker's one job
        self.conn.set(keys.HEARTBEAT.format(WORKER), "bench", ex=86_400)

    def fill(self, total: int, **options: Any) -> float:
        """Enqueue jobs until ``total`` were sent, in batches of ``FILL_BATCH``, priorities in turn; returns the
        bytes of server memory per job added."""
        start, before = self.filled, _used(self.conn)
        while self.filled < total:
            n = min(FILL_BATCH, total - self.filled)
            priority = MIX[(self.filled // FILL_BATCH) % len(MIX)]
            extra = {} if priority is None else {"priority": priority}
            self.task.enqueue_many([()] * n, client=self.client, **extra, **options)
            self.filled += n
        return (_used(self.conn) - before) / max(total - start, 1)

    def claim_one(self, worker: str = WORKER) -> str:
        args = [worker, 1, time.time(), "", time.time() + 3600, 100, "strict", 0, 0, DATA_MAX_BYTES, 900, 1, 0, 0]
        rows = self.claim(self.conn, [keys.CLAIMS.format(worker), keys.PAUSED, QUEUE], args)[:-1]
        return str(rows[0][0].decode())

    def settle(self, job_id: str, kind: str, retry_at: float = 0) -> None:
        record = [job_id, QUEUE, kind, "", 500, retry_at, "", "", 0.1, "bench.noop", "le_5ms", 0, "", ""]
        now = time.time()
        self.finish(self.conn, [keys.CLAIMS.format(WORKER)], [WORKER, now, "", 100, int(now // 60), *record])

    def reap_now(self, _: object) -> None:
        self.reap(self.conn, [keys.WORKERS], [time.time(), "", 100, int(time.time() // 60), 5, 900])

    def operations(self) -> dict[str, Operation]:
        noop, client, now = self.task, self.client, time.time
        return {
            "enqueue": Operation(lambda i: noop.apply_async((), client=client, priority=(0, 5, 9)[i % 3])),
            "map": Operation(lambda i: noop.enqueue_many([()] * 10, client=client, priority=(0, 5, 9)[i % 3])),
            "canvas": Operation(lambda i: (noop.si() | noop.si() | noop.si()).apply_async(client=client)),
            "claim": Operation(lambda i: self.claim_one()),
            "settle": Operation(lambda job_id: self.settle(job_id, "ok"), lambda i: self.claim_one()),
            "retry": Operation(lambda job_id: self.settle(job_id, "retry", now() + 60), lambda i: self.claim_one()),
            # a worker that never heartbeats holds one job: the reap takes it for dead
            "recover": Operation(self.reap_now, lambda i: self.claim_one(f"scale-dead-{i}")),
            "revoke": Operation(
                lambda job_id: self.revoke(self.conn, [], [now(), "", 100, job_id]),
                lambda i: noop.apply_async((), client=client).id,
            ),
            "enqueue_delayed": Operation(lambda i: noop.apply_async((), client=client, countdown=86_400)),
            "promote": Operation(
                lambda _: self.promote(self.conn, [QUEUE], [now() + 1, "", 10]),
                lambda i: self.fill(self.filled + 10, countdown=0.001),
            ),
        }


class RQBacklog:
    """Plain RQ's producer (``Queue.enqueue``, ``enqueue_many``) on its own queue of the same server."""

    def __init__(self, harness: Harness) -> None:
        self.conn: redis.Redis = harness.conn
        self.queue = Queue(RQ_QUEUE, connection=harness.conn)
        self.func = load_module("tests.bench_jobs").noop
        self.filled = 0

    def fill(self, total: int) -> float:
        start, before = self.filled, _used(self.conn)
        while self.filled < total:
            n = min(FILL_BATCH, total - self.filled)
            self.queue.enqueue_many([Queue.prepare_data(self.func, args=()) for _ in range(n)])
            self.filled += n
        return (_used(self.conn) - before) / max(total - start, 1)

    def operations(self) -> dict[str, Operation]:
        many = [Queue.prepare_data(self.func, args=()) for _ in range(10)]
        return {
            "enqueue": Operation(lambda i: self.queue.enqueue(self.func)),
            "map": Operation(lambda i: self.queue.enqueue_many(many)),
        }


class BullBacklog:
    """BullMQ's producer (``Queue.addBulk`` through bench-peers/bullmq_bench.mjs) on its own queue: memory only."""

    def __init__(self, harness: Harness) -> None:
        self.conn: redis.Redis = harness.conn
        self.env = {**os.environ, "REDIS_URL": harness.url}
        self.filled = 0

    def fill(self, total: int) -> float:
        start, before = self.filled, _used(self.conn)
        if total > self.filled:
            command = [*DRIVERS["bullmq"], "fill", "noop", str(total - self.filled)]
            done = subprocess.run(command, env=self.env, cwd=PEER_DIR, capture_output=True, text=True, timeout=3600)
            if done.returncode:
                raise BenchError(f"{' '.join(command)} exited with code {done.returncode}: {done.stderr[-500:]}")
            self.filled = total
        return (_used(self.conn) - before) / max(total - start, 1)

    def operations(self) -> dict[str, Operation]:
        return {}


def run_scale(
    harness: Harness, options: ScaleOptions, progress: Callable[[str], None] = print,
    save: Callable[[ScaleResults], object] = lambda results: None,
) -> ScaleResults:  # fmt: skip
    """Every operation at every backlog size (taskrail, and plain RQ where it has the operation), then the
    delayed phase on top of the largest backlog; ``save`` gets the results so far after each size."""
    results = ScaleResults(rows={op: {} for op in OPERATIONS}, memory={"taskrail": {}, "rq": {}})
    harness.flush()
    taskrail, rq = Backlog(harness), RQBacklog(harness)
    systems: dict[str, tuple[Backlog | RQBacklog | BullBacklog, dict[str, Operation]]] = {
        "taskrail": (taskrail, taskrail.operations()),
        "rq": (rq, rq.operations()),
    }
    if installed("bullmq"):
        systems["bullmq"] = (BullBacklog(harness), {})
        results.memory["bullmq"] = {}
    for size in options.sizes:
        for name, (backlog, ops) in systems.items():
            if name != "taskrail" and size > options.rq_max:
                results.notes.append(f"{name} measured up to {options.rq_max:,} waiting jobs")
                continue
            progress(f"{name}: filling to {size:,} waiting jobs")
            results.memory[name][size] = backlog.fill(size)
            for op, operation in ops.items():
                if op in WAITING_OPS:
                    progress(f"{name}, {size:,} waiting: {op}")
                    results.rows[op].setdefault(name, {})[size] = timed(harness.conn, operation, options.samples)
            save(results)
    delayed = Backlog(harness)  # the schedule fills beside the waiting jobs: no flush of millions of keys
    progress(f"taskrail: filling the schedule with {options.delayed:,} delayed jobs")
    delayed.fill(options.delayed, countdown=86_400)
    for op in DELAYED_OPS:
        progress(f"taskrail, {options.delayed:,} delayed: {op}")
        results.rows[op]["taskrail"] = {options.delayed: timed(harness.conn, delayed.operations()[op], options.samples)}
    save(results)
    return results


def format_scale(results: ScaleResults) -> str:
    """The markdown table: per operation and system its complexity, then median / p99 / slowest server µs
    per backlog size, and the memory per waiting job."""
    sizes = sorted({n for by_system in results.rows.values() for by_size in by_system.values() for n in by_size})
    header = [
        "operation",
        "system",
        "complexity",
        *[f"{_size(n)}: median / p99 / slowest (µs) (slowest script; calls with one over 1 ms)" for n in sizes],
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * 3 + [" ---: "] * len(sizes)) + "|"]
    for op, (label, complexity) in OPERATIONS.items():
        for system, by_size in results.rows.get(op, {}).items():
            cells = [_cell(by_size.get(n)) for n in sizes]
            row = [label, system, complexity] if system == "taskrail" else [RQ_LABELS.get(op, label), system, ""]
            lines.append("| " + " | ".join([*row, *cells]) + " |")
    for system, per_job in results.memory.items():
        cells = [f"{per_job[n]:,.0f}" if n in per_job else "-" for n in sizes]
        lines.append("| " + " | ".join(["server memory per waiting job (bytes)", system, "", *cells]) + " |")
    lines += ["", *[f"note: {note}" for note in results.notes]]
    return "\n".join(lines)


def _cell(row: dict[str, Any] | None) -> str:
    if not row:
        return "-"
    figures = f"{row['median_us']:,.0f} / {row['p99_us']:,.0f} / {row['slowest_us']:,.0f}"
    return f"{figures} ({row['slowest']}; {row['over_1ms']} over 1 ms)" if row.get("slowest") else figures


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def write_scale_chart(results: ScaleResults, path: Path) -> Path:
    """Median server time per operation against the backlog, both axes logarithmic."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 6))
    for op, by_system in results.rows.items():
        for system, by_size in by_system.items():
            sizes = sorted(by_size)
            label = (
                f"{OPERATIONS[op][0]} [{OPERATIONS[op][1]}]" if system == "taskrail" else f"RQ: {RQ_LABELS.get(op, op)}"
            )
            dashed = system == "rq"
            ax.plot(sizes, [by_size[n]["median_us"] for n in sizes], marker="o", label=label,
                    linestyle="--" if dashed else "-", color="black" if dashed else None)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs waiting (delayed jobs, for the delayed operations)")
    ax.set_ylabel("server time per call, median (µs)")
    ax.set_title("Cost as work grows: server time per operation against the backlog")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
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
        server = harness.server_version()
        results = run_scale(harness, options, lambda text: print(text, flush=True), partial(_save, out_dir))
    results.notes.append(
        f"{command}: {time.monotonic() - started:.0f} s, {server}, {options.samples} calls per operation and size"
    )
    if not installed("bullmq"):
        results.notes.append("BullMQ not measured: run `make bench-peers` to install it")
    return results, _save(out_dir, results)


def _save(out_dir: Path, results: ScaleResults) -> Path:
    """results-scale.json, results-scale.md and scale.png as they stand (also after each backlog size)."""
    (out_dir / "results-scale.json").write_text(json.dumps(asdict(results), indent=2))
    (out_dir / "results-scale.md").write_text(format_scale(results) + "\n")
    return write_scale_chart(results, out_dir / "scale.png")
