"""The bench's moving parts: its server, a clean database per run, worker processes and completion counts."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import redis

from config.embedded import start_server
from config.errors import BenchError, ConfigError
from config.urls import redact_url
from scripts.bench.systems import QUEUE, WORKERS, System
from tasks.core import keys

__all__ = ["Harness", "load_module", "open_harness"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/bench_*.py live there
POLL_S = 0.01  # the drains last seconds; polling faster would only load the 2 cores
STALL_S = 60.0  # no job finished for this long: the run is stuck


def load_module(name: str) -> ModuleType:
    """Import ``tests.bench_jobs`` / ``tests.bench_tasks`` from the checkout."""
    if not (ROOT / "tests" / "bench_tasks.py").exists():
        raise ConfigError(f"taskrail bench runs from a source checkout; {ROOT / 'tests' / 'bench_tasks.py'} is missing")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(name)


class Harness:
    """A server to measure against, plus the worker processes of the current run."""

    def __init__(self, url: str, work_dir: Path, log_dir: Path) -> None:
        self.url = url
        self.conn = redis.Redis.from_url(url)
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}  # pid -> its log file
        self.queue_key = keys.QUEUE.format(QUEUE)
        self.finished_key = keys.FINISHED.format(QUEUE)
        self.failed_key = keys.FAILED.format(QUEUE)

    def flush(self) -> None:
        """Empty the database between runs, so every run starts from the same state."""
        self.conn.flushdb()

    def worker_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
        env.update(
            REDIS_URL=self.url,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            TASKRAIL_IMPORTS="tests.bench_tasks",
            TASKRAIL_DATA_DIR=str(self.work_dir / "data"),
        )
        env.update(extra)
        return env

    def start_workers(self, system: System, run: str, env: dict[str, str] | None = None) -> list[int]:
        """Start ``WORKERS`` worker processes of ``system``; returns their pids once they are registered."""
        commands = [
            system.worker_args(self.url, f"bench-{system.key}-{i}-{uuid.uuid4().hex[:6]}") for i in range(WORKERS)
        ]

        def ready() -> bool:
            return int(self.conn.scard(keys.RQ_WORKERS)) >= WORKERS

        env = self.worker_env({**system.worker_env(), **(env or {})})
        return self.start(commands, run, env, ready, f"{system.label} workers to start")

    def start(
        self, commands: list[list[str]], run: str, env: dict[str, str], ready: Callable[[], object], what: str,
        cwd: Path = ROOT,
    ) -> list[int]:  # fmt: skip
        """Start worker processes, each in its own process group, and wait until ``ready()``."""
        self.stop_workers()
        for i, command in enumerate(commands):
            log_path = self.log_dir / f"{run}-{i}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    command,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=cwd,
                    start_new_session=True,  # its own group: forked children (RQ's work horses) go with it
                )
            self.procs.append(proc)
            self.logs[proc.pid] = log_path
        self._wait(ready, 120, what)
        return [p.pid for p in self.procs]

    def stop_workers(self) -> None:
        """Kill this run's workers (and their children); the database is flushed before the next run."""
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)
        self.procs = []

    def counts(self) -> tuple[int, int]:
        """(finished, failed) jobs of the bench queue, from RQ's registries."""
        with self.conn.pipeline(transaction=False) as pipe:
            pipe.zcard(self.finished_key)
            pipe.zcard(self.failed_key)
            finished, failed = pipe.execute()
        return int(finished), int(failed)

    def wait_done(
        self,
        total: int,
        on_poll: Callable[[int], None] | None = None,
        counts: Callable[[], tuple[int, int]] | None = None,
    ) -> float:
        """Poll until exactly ``total`` jobs have ended; returns the monotonic time they had.

        Raises:
            BenchError: a job failed, a job ran twice (more than ``total`` ended), a worker died, or nothing
                finished for ``STALL_S`` seconds.
        """
        read = counts or self.counts
        last, last_change = -1, time.monotonic()
        while True:
            finished, failed = read()
            now = time.monotonic()
            self._check(finished, failed, total)
            if on_poll:
                on_poll(finished)
            if finished == total:
                return now
            if finished != last:
                last, last_change = finished, now
            elif now - last_change > STALL_S:
                raise BenchError(
                    f"no job finished for {STALL_S:.0f}s ({finished} of {total} done): jobs were lost or the "
                    f"workers hang; see the worker logs in {self.log_dir}"
                )
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise BenchError(
                    f"{len(dead)} of {len(self.procs)} workers exited ({finished} of {total} jobs done)"
                    f"{self._last_words(dead[0])}"
                )
            time.sleep(POLL_S)

    def stop_and_recount(self, total: int, counts: Callable[[], tuple[int, int]] | None = None) -> None:
        """Stop the workers, then check again: a job that ran twice after the last poll shows now."""
        self.stop_workers()
        self._check(*(counts or self.counts)(), total)

    def _check(self, finished: int, failed: int, total: int) -> None:
        if failed:
            raise BenchError(f"{failed} bench job(s) failed; see the worker logs in {self.log_dir}")
        if finished > total:
            raise BenchError(f"{finished} jobs ended where {total} were enqueued: a job ran twice")

    def _wait(self, predicate: Callable[[], object], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise BenchError(f"a worker exited while waiting for {what}{self._last_words(dead[0])}")
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}; see {self.log_dir}")
            time.sleep(0.02)

    def _last_words(self, proc: subprocess.Popen[bytes]) -> str:
        """The end of a dead worker's log, to show with the error."""
        path = self.logs.get(proc.pid)
        lines = path.read_text(errors="replace").splitlines()[-6:] if path and path.exists() else []
        tail = "".join(f"\n    {line}" for line in lines)
        return f" with code {proc.returncode}; the end of {path}:{tail}"

    def server_version(self) -> str:
        info = self.conn.info("server")
        if "valkey_version" in info:
            return f"valkey {info['valkey_version']}"
        return f"redis {info.get('redis_version', '?')}"


@contextmanager
def open_harness(redis_url: str | None, out_dir: Path) -> Iterator[Harness]:
    """A harness on a private server (started here, stopped at the end) or on ``redis_url``.

    Raises:
        ConfigError: ``redis_url``'s database holds keys (the bench flushes it between runs).
    """
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="taskrail-bench-", ignore_cleanup_errors=True) as tmp:
        work_dir = Path(tmp)
        server_pid = None
        if redis_url:
            url = redis_url
            size = redis.Redis.from_url(url).dbsize()
            if size:
                raise ConfigError(
                    f"REDIS_URL {redact_url(url)} holds {size} keys and taskrail bench flushes its database between runs: "
                    "point REDIS_URL at an empty database (e.g. .../15), or unset it to use a private server"
                )
        else:
            # No append-only file: like a default redis-server, and no disk writes in the figures.
            server = start_server(work_dir / "server", appendonly=False)
            url, server_pid = server.url, server.pid
        harness = Harness(url, work_dir, log_dir)
        try:
            yield harness
        finally:
            harness.stop_workers()
            if server_pid:
                os.kill(server_pid, signal.SIGTERM)
            else:
                harness.flush()
            harness.conn.close()
