"""Celery, Dramatiq, BullMQ and Huey on the same workloads, when ``make bench-peers`` has installed them.

Each peer runs from its own environment (``.venv-peers``, ``bench-peers/node_modules``) through a
small driver in ``bench-peers/`` that enqueues the way that peer's users do. Every peer's worker
process counts the jobs it ran and the jobs that failed, and adds them to ``bench:done`` and
``bench:failed`` every 10 ms (one write per 10 ms, not per job): a job run twice counts twice, and
a failure stops the run, as for taskrail. A drain is timed from the first completion to the last, so
the peer's start-up is not timed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

from config.errors import BenchError
from scripts.bench.harness import ROOT, Harness
from scripts.bench.systems import WORKERS, System
from scripts.bench.workloads import latency_figures

__all__ = ["DRIVERS", "installed", "peer_counts", "peer_drain", "peer_enqueue", "peer_latency", "peer_versions"]

PEER_DIR = ROOT / "bench-peers"
PEER_BIN = ROOT / ".venv-peers" / "bin"
PY = str(PEER_BIN / "python")
DRIVERS = {
    "celery": (PY, "celery_bench.py"),
    "dramatiq": (PY, "dramatiq_bench.py"),
    "huey": (PY, "huey_bench.py"),
    "bullmq": ("node", "bullmq_bench.mjs"),
}
NEEDS = {
    "celery": ".venv-peers/bin/celery",
    "dramatiq": ".venv-peers/bin/dramatiq",
    "huey": ".venv-peers/bin/huey_consumer",
    "bullmq": "bench-peers/node_modules/bullmq",
}
Progress = Callable[[int], None]


def installed(family: str) -> bool:
    return (ROOT / NEEDS[family]).exists() and (family != "bullmq" or bool(shutil.which("node")))


def workers(system: System) -> tuple[list[list[str]], int]:
    """Commands starting ``system``'s worker processes, and how many ready marks to expect."""
    c = str(system.concurrency)
    if system.family == "celery":
        base = [str(PEER_BIN / "celery"), "-A", "celery_bench", "worker", "-Q", "bench", "--loglevel", "WARNING"]
        if system.pool == "threads":  # one threads pool per process
            return [[*base, "--pool", "threads", "-c", c, "-n", f"t{i}@%h"] for i in range(WORKERS)], WORKERS
        return [[*base, "--pool", "prefork", "-c", c, "-n", "prefork@%h"]], 1
    if system.family == "dramatiq":
        return [[str(PEER_BIN / "dramatiq"), "dramatiq_bench", "-Q", "bench", "-p", str(WORKERS), "-t", c]], WORKERS
    if system.family == "huey":
        consumer = [str(PEER_BIN / "huey_consumer"), "huey_bench.huey", "-k", system.pool, "-w"]
        if system.pool == "process":
            return [[*consumer, str(WORKERS)]], WORKERS
        return [[*consumer, c] for _ in range(WORKERS)], WORKERS * system.concurrency  # a mark per thread
    return [["node", "bullmq_bench.mjs", "worker", c] for _ in range(WORKERS)], WORKERS


def peer_enqueue(harness: Harness, system: System, bulk: bool, n: int) -> float | None:
    """Jobs/s one producer enqueues one by one or in bulk; None when the peer has no bulk API."""
    harness.flush()
    rate = _drive(system, harness, "enqueue-bulk" if bulk else "enqueue-one", n).get("rate")
    return float(rate) if rate else None


def peer_drain(harness: Harness, system: System, kind: str, n: int, run: str, progress: Progress) -> float:
    harness.flush()
    _drive(system, harness, "fill", kind, n)
    first: list[tuple[float, int]] = []

    def watch(done: int) -> None:
        progress(done)
        if done and not first:
            first.append((time.monotonic(), done))

    _start(harness, system, run)
    end = harness.wait_done(n, watch, peer_counts(harness))
    harness.stop_and_recount(n, peer_counts(harness))
    start, already = first[0]
    if end <= start:  # everything finished between two polls: too few jobs to time
        raise BenchError(f"{system.label}: {n} {kind} jobs finished within one poll; raise --drain-s")
    return (n - already) / (end - start)


def peer_latency(harness: Harness, system: System, n: int, rate: float, run: str) -> dict[str, float]:
    harness.flush()
    _start(harness, system, run)
    _drive(system, harness, "paced", rate, n)
    harness.wait_done(n, None, peer_counts(harness))
    harness.stop_and_recount(n, peer_counts(harness))
    return latency_figures(system.label, harness.conn.lrange("bench:latency", 0, -1), n)


def peer_counts(harness: Harness) -> Callable[[], tuple[int, int]]:
    """(jobs run, jobs failed) as the peers' worker processes count them."""
    conn = harness.conn

    def read() -> tuple[int, int]:
        done, failed = conn.mget("bench:done", "bench:failed")
        return int(done or 0), int(failed or 0)

    return read


def peer_versions() -> dict[str, str]:
    """The installed version of each peer (and node), or "not installed"."""
    found = dict.fromkeys(("celery", "dramatiq", "huey", "bullmq", "node"), "not installed")
    if (PEER_BIN / "python").exists():
        code = "import json, importlib.metadata as m; print(json.dumps({d: m.version(d) for d in %r}))"
        dists = ["celery", "dramatiq", "huey"]
        proc = subprocess.run([PY, "-c", code % dists], capture_output=True, text=True, timeout=60)
        if proc.returncode == 0:
            found.update(json.loads(proc.stdout))
    package = PEER_DIR / "node_modules" / "bullmq" / "package.json"
    if package.exists():
        found["bullmq"] = json.loads(package.read_text())["version"]
    if shutil.which("node"):
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return found


def _start(harness: Harness, system: System, run: str) -> None:
    commands, marks = workers(system)

    def ready() -> bool:
        return int(harness.conn.scard("bench:ready")) >= marks

    harness.start(commands, run, _env(harness), ready, f"{system.label} workers to start", cwd=PEER_DIR)


def _drive(system: System, harness: Harness, *args: object) -> dict[str, Any]:
    """Run one driver command in the peer's environment; returns the JSON it prints last."""
    command = [*DRIVERS[system.family], *(str(a) for a in args)]
    proc = subprocess.run(command, env=_env(harness), cwd=PEER_DIR, capture_output=True, text=True, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BenchError(f"{' '.join(command)} exited with code {proc.returncode}: " + " | ".join(tail))
    return dict(json.loads(lines[-1]))


def _env(harness: Harness) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
    env.update(REDIS_URL=harness.url, PYTHONPATH=str(PEER_DIR))
    return env
