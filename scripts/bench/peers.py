"""Celery, Dramatiq and BullMQ on the same workloads, when ``make bench-peers`` has installed them.

Each peer runs from its own environment (``.venv-peers``, ``bench-peers/node_modules``) through a
small driver in ``bench-peers/`` that enqueues the way that peer's users do. The bench starts the
peer's workers, counts completions (BullMQ's completed set; a ``bench:done`` counter the Celery and
Dramatiq jobs add to every 10 ms) and times the drain from the first completion to the last, so the
peer's start-up is not timed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from config.errors import BenchError
from scripts.bench.harness import ROOT, Harness
from scripts.bench.results import Results
from scripts.bench.systems import IO_CONCURRENCY, WORKERS, BenchOptions

__all__ = ["PEERS", "Peer", "run_peers"]

PEER_DIR = ROOT / "bench-peers"
PEER_BIN = ROOT / ".venv-peers" / "bin"


@dataclass(frozen=True)
class Peer:
    """One peer: its driver command, how its workers start and how its completions are counted."""

    key: str
    label: str
    driver: tuple[str, ...]
    needs: tuple[str, ...]  # paths that exist once make bench-peers has run
    scale: float = 0.06  # of BenchOptions.jobs, for each drain and the bulk enqueue

    def workers(self, kind: str) -> tuple[list[list[str]], int]:
        """Commands starting ``WORKERS`` worker processes for ``kind``, and how many ready marks to expect."""
        threads = IO_CONCURRENCY if kind == "io" else 1
        if self.key == "celery":
            base = [str(PEER_BIN / "celery"), "-A", "celery_bench", "worker", "-Q", "bench", "--loglevel", "WARNING"]
            if kind == "io":  # Celery's threads pool for I/O-bound work, one pool per process
                cmds = [[*base, "--pool", "threads", "-c", str(threads), "-n", f"io{i}@%h"] for i in range(WORKERS)]
                return cmds, WORKERS
            return [[*base, "--pool", "prefork", "-c", str(WORKERS), "-n", "prefork@%h"]], 1
        if self.key == "dramatiq":
            cmd = [str(PEER_BIN / "dramatiq"), "dramatiq_bench", "-Q", "bench"]
            return [[*cmd, "--processes", str(WORKERS), "--threads", str(threads)]], WORKERS
        return [["node", "bullmq_bench.mjs", "worker", kind, str(threads)] for _ in range(WORKERS)], WORKERS

    def installed(self) -> bool:
        return all((ROOT / need).exists() for need in self.needs) and (
            self.key != "bullmq" or bool(shutil.which("node"))
        )


PEERS = (
    Peer("celery", "Celery", (str(PEER_BIN / "python"), "celery_bench.py"), (".venv-peers/bin/celery",)),
    Peer("dramatiq", "Dramatiq", (str(PEER_BIN / "python"), "dramatiq_bench.py"), (".venv-peers/bin/dramatiq",)),
    Peer("bullmq", "BullMQ", ("node", "bullmq_bench.mjs"), ("bench-peers/node_modules/bullmq",), scale=0.2),
)


def run_peers(harness: Harness, options: BenchOptions, results: Results, show: Callable[[str], None]) -> None:
    """Measure every installed peer; a missing one gets a note instead of figures."""
    missing = [p.label for p in PEERS if not p.installed()]
    if missing:
        results.notes.append(f"not installed, skipped: {', '.join(missing)} (make bench-peers installs them)")
    for peer in (p for p in PEERS if p.installed()):
        show(peer.label)
        results.systems[peer.key] = peer.label
        try:
            _measure(harness, peer, options, results)
        except BenchError as exc:  # one peer failing leaves the others and taskrail's figures standing
            results.notes.append(f"{peer.label}: stopped: {exc}")
        finally:
            harness.stop_workers()


def _measure(harness: Harness, peer: Peer, options: BenchOptions, results: Results) -> None:
    env = _env(harness)
    runs: dict[str, list[float]] = {}
    n_drain = max(10, int(options.jobs * peer.scale))
    n_one = min(options.enqueue_jobs, n_drain)
    for rep in range(options.repeat):
        for metric, args in (("enqueue_one", ["enqueue-one", n_one]),
                             ("enqueue_bulk", ["enqueue-bulk", n_drain])):  # fmt: skip
            harness.flush()
            rate = _drive(peer, env, *args).get("rate")
            if rate:
                runs.setdefault(metric, []).append(float(rate))
        for kind in ("noop", "io"):
            runs.setdefault(f"drain_{kind}", []).append(_drain(harness, peer, env, kind, n_drain, rep))
        for name, value in _latency(harness, peer, env, options, rep).items():
            runs.setdefault(f"latency_{name}", []).append(value)
    sizes = {"enqueue_one": n_one, "enqueue_bulk": n_drain}
    for metric, values in runs.items():
        jobs = sizes.get(metric, options.latency_jobs if metric.startswith("latency") else n_drain)
        results.figures.setdefault(metric, {})[peer.key] = {
            "median": statistics.median(values), "runs": values, "jobs": jobs
        }  # fmt: skip


def _drain(harness: Harness, peer: Peer, env: dict[str, str], kind: str, n: int, rep: int) -> float:
    harness.flush()
    _drive(peer, env, "fill", kind, n)
    first: list[tuple[float, int]] = []

    def watch(done: int) -> None:
        if done and not first:
            first.append((time.monotonic(), done))

    _start(harness, peer, env, kind, f"drain_{kind}-{peer.key}-{rep + 1}")
    end = harness.wait_done(n, watch, _counter(harness, peer))
    harness.stop_workers()
    start, already = first[0]
    if end <= start:  # everything finished between two polls: too few jobs to time
        raise BenchError(f"{peer.label}: {n} {kind} jobs finished within one poll; raise --jobs")
    return (n - already) / (end - start)


def _latency(harness: Harness, peer: Peer, env: dict[str, str], options: BenchOptions, rep: int) -> dict[str, float]:
    harness.flush()
    n = options.latency_jobs
    _start(harness, peer, env, "latency", f"latency-{peer.key}-{rep + 1}")
    _drive(peer, env, "paced", options.rate, n)
    harness.wait_done(n, None, _counter(harness, peer))
    harness.stop_workers()
    samples = [float(x) * 1000 for x in harness.conn.lrange("bench:latency", 0, -1)]
    if len(samples) < 2:
        raise BenchError(f"{peer.label}: only {len(samples)} latency jobs recorded their start")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def _start(harness: Harness, peer: Peer, env: dict[str, str], kind: str, run: str) -> None:
    commands, marks = peer.workers(kind)

    def ready() -> bool:
        return int(harness.conn.scard("bench:ready")) >= marks

    harness.start(commands, run, env, ready, f"{peer.label} workers to start", cwd=PEER_DIR)


def _counter(harness: Harness, peer: Peer) -> Callable[[], tuple[int, int]]:
    conn = harness.conn
    if peer.key == "bullmq":

        def bull() -> tuple[int, int]:
            with conn.pipeline(transaction=False) as pipe:
                pipe.zcard("bull:bench:completed")
                pipe.zcard("bull:bench:failed")
                done, failed = pipe.execute()
            return int(done), int(failed)

        return bull
    return lambda: (int(conn.get("bench:done") or 0), 0)


def _drive(peer: Peer, env: dict[str, str], *args: object) -> dict[str, Any]:
    """Run one driver command in the peer's environment; returns the JSON it prints last."""
    command = [*peer.driver, *(str(a) for a in args)]
    proc = subprocess.run(command, env=env, cwd=PEER_DIR, capture_output=True, text=True, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BenchError(f"{' '.join(command)} exited with code {proc.returncode}: " + " | ".join(tail))
    return dict(json.loads(lines[-1]))


def _env(harness: Harness) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
    env.update(REDIS_URL=harness.url, PYTHONPATH=str(PEER_DIR))
    return env
