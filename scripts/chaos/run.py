"""The chaos run: jobs through supervised workers behind a lossy proxy, faults throughout, then the verdict."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from tqdm import tqdm

from config.errors import ConnectionFailed, TaskrailError
from config.settings import load_settings
from scripts.chaos.check import Findings, check, final_count, leftovers
from scripts.chaos.faults import FaultPlan, Faults
from scripts.chaos.jobs import QUEUE
from scripts.chaos.plan import enqueue_mix
from scripts.chaos.proxy import Proxy
from scripts.chaos.server import ChaosServer
from tasks.core import keys
from tasks.core.client import Client

__all__ = ["ChaosOptions", "ChaosResult", "run_chaos"]

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.5
PROFILE = """\
queues: [{queue}]
profiles:
  chaos:
    mode: strict
    queues:
      {queue}: {{workers: {workers}, shutdown_timeout_s: 5, max_restarts: 1000000, max_seconds: 1}}
"""


@dataclass(frozen=True)
class ChaosOptions:
    """One run's sizes and faults."""

    jobs: int = 50_000
    work_ms: float = 5.0  # each job sleeps this long, so faults find jobs in flight
    workers: int = 3
    heartbeat_ttl_s: float = 3.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    stall_s: float = 120.0  # no job reached a final state for this long: stop waiting, count the rest lost
    settle_s: float = 20.0  # after the last job, how long claims and slots may take to clear
    redis_url: str | None = None
    seed: int = 13
    out_dir: Path = Path("chaos-output")
    command: str = "taskrail chaos"

    @classmethod
    def build(cls, *, quick: bool, **given: Any) -> ChaosOptions:
        """Defaults (or the quick sizes: about 3,000 jobs, a run of a minute or two), then what was given."""
        base = cls(jobs=3_000, work_ms=20.0) if quick else cls()
        return replace(base, **{k: v for k, v in given.items() if v is not None})


@dataclass
class ChaosResult:
    options: ChaosOptions
    findings: Findings
    kinds: dict[str, int]
    kills: int = 0
    stops: int = 0
    restarts: int = 0
    dropped: int = 0
    duration_s: float = 0.0
    finished_at: str = ""
    notes: list[str] = field(default_factory=list)


def run_chaos(options: ChaosOptions) -> ChaosResult:
    """Run it end to end; servers, proxy and workers started here are stopped here, whatever happens."""
    log_dir = options.out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="taskrail-chaos-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        server = ChaosServer.given(options.redis_url) if options.redis_url else ChaosServer.private(work / "server")
        try:
            with Proxy(0, ("127.0.0.1", server.port)) as proxy:
                return _run(options, server, proxy, work, log_dir)
        finally:
            server.stop()


def _run(options: ChaosOptions, server: ChaosServer, proxy: Proxy, work: Path, log_dir: Path) -> ChaosResult:
    env = _worker_env(options, server, proxy, work)
    conn = redis.Redis.from_url(server.url)
    client = Client(load_settings(env), conn)
    with tqdm(total=options.jobs, unit="job", desc="enqueue", leave=False) as bar:
        expected = enqueue_mix(client, options.jobs, options.work_ms, options.seed, bar.update)
    total = len(expected.values)
    notes = [] if server.restartable else ["REDIS_URL given: the server is not ours, so it was not restarted"]
    started = time.monotonic()
    supervisor = _start_supervisor(env, work, log_dir)
    progress = _Progress(conn, total)
    faults = Faults(options.faults, supervisor.pid, proxy, progress.fraction,
                    server.restart if server.restartable else None, options.seed)  # fmt: skip
    try:
        _wait_workers(conn, options.workers, supervisor, log_dir)
        faults.start()
        _wait_final(progress, options.stall_s, notes)
        faults.stop()
        _settle(conn, options.settle_s)
    finally:
        faults.stop()
        _stop_supervisor(supervisor)
    duration = time.monotonic() - started
    findings = _retrying(lambda: check(conn, expected.values, QUEUE))
    notes += faults.errors
    conn.close()
    return ChaosResult(
        options, findings, expected.kinds, faults.kills, faults.stops, faults.restarts, faults.dropped,
        round(duration, 1), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), notes,
    )  # fmt: skip


def _worker_env(options: ChaosOptions, server: ChaosServer, proxy: Proxy, work: Path) -> dict[str, str]:
    """The supervisor's (and so the workers') environment: the proxy as REDIS_URL, the chaos tasks, short TTLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
    env.update(
        REDIS_URL=proxy.url,
        CHAOS_RECORD_URL=server.url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
        TASKRAIL_IMPORTS="scripts.chaos.jobs",
        TASKRAIL_DATA_DIR=str(work / "data"),
        TASKRAIL_HEARTBEAT_INTERVAL_S=str(options.heartbeat_ttl_s / 3),
        TASKRAIL_HEARTBEAT_TTL_S=str(options.heartbeat_ttl_s),
        # Kills strike the same job again and again; failing a job after its first stall would count as
        # lost what the run means to see delivered (poison jobs are not what this run measures).
        TASKRAIL_MAX_STALLED="1000",
        # Room for every event of every job (enqueued, retried, stalled, completed), so none is trimmed.
        TASKRAIL_EVENTS_MAXLEN=str(max(10_000, options.jobs * 20)),
    )
    (work / "scaling.yaml").write_text(PROFILE.format(queue=QUEUE, workers=options.workers))
    return env


def _start_supervisor(env: dict[str, str], work: Path, log_dir: Path) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).with_name("taskrail")), "supervise", "--profile", "chaos",
               "--file", str(work / "scaling.yaml"), "--node", "chaos"]  # fmt: skip
    with open(log_dir / "supervisor.log", "wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=ROOT, start_new_session=True)  # fmt: skip


def _stop_supervisor(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (workers drain), then SIGKILL the whole group if it takes too long."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def _wait_workers(conn: redis.Redis, count: int, supervisor: subprocess.Popen[bytes], log_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while int(conn.scard(keys.WORKERS)) < count:
        if supervisor.poll() is not None or time.monotonic() > deadline:
            raise TaskrailError(f"the supervisor did not start {count} workers; see {log_dir / 'supervisor.log'}")
        time.sleep(0.1)


class _Progress:
    """Jobs in a final state, read directly from the server (across its restarts)."""

    def __init__(self, conn: redis.Redis, total: int) -> None:
        self.conn = conn
        self.total = total
        self.done = 0

    def read(self) -> int:
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            self.done = final_count(self.conn, QUEUE)
        return self.done

    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def _wait_final(progress: _Progress, stall_s: float, notes: list[str]) -> None:
    """Until every job is in a final registry, or nothing moved for ``stall_s``."""
    last, last_change = -1, time.monotonic()
    with tqdm(total=progress.total, unit="job", desc="chaos") as bar:
        while True:
            done = progress.read()
            bar.update(max(0, min(done, progress.total) - bar.n))
            if done >= progress.total:
                return
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > stall_s:
                notes.append(f"stopped waiting: no job ended for {stall_s:.0f}s ({done} of {progress.total} ended)")
                return
            time.sleep(POLL_S)


def _settle(conn: redis.Redis, settle_s: float) -> None:
    """Give the recovery leader time to clear what killed workers held (their heartbeats must expire first)."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        if not _retrying(lambda: leftovers(conn, QUEUE)):
            return
        time.sleep(POLL_S)


def _retrying(read: Any, attempts: int = 60) -> Any:
    """A read that waits out a server restart still in progress."""
    for _ in range(attempts - 1):
        try:
            return read()
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            time.sleep(0.5)
    try:
        return read()
    except redis.RedisError as exc:
        raise ConnectionFailed(f"the chaos server does not answer: {exc}") from exc
