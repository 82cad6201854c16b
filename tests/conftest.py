"""Shared fixtures: a real server per session, a clean database per test, real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

from config import Settings, load_settings, start_server
from config.embedded import EmbeddedServer
from tasks.core.client import default_client
from tests.prereqs import require_module

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
# The suite never finds (or stops) the user's own embedded server, nor another worktree's suite's: its
# server file is private to this run. Tests that need an embedded server start it under this name.
SERVER_FILE = Path(tempfile.mkdtemp(prefix="taskrail-tests-")) / "server.json"
os.environ["TASKRAIL_SERVER_FILE"] = str(SERVER_FILE)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> object:
    """Poll ``predicate`` until it returns something truthy, or fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A real valkey-server on a free loopback port for the whole session."""
    srv = start_server(tmp_path_factory.mktemp("server"))
    yield srv
    os.kill(srv.pid, signal.SIGTERM)


@pytest.fixture
def redis_url(server: EmbeddedServer) -> Iterator[str]:
    """The server's URL, with database 0 flushed before the test."""
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()
    yield server.url


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the clean database."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def env(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for subprocesses: the test server, a private data dir, this repo importable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
    environ.pop("SMTP_URL", None)
    environ.pop("SENTRY_DSN", None)
    environ.update(
        REDIS_URL=redis_url,
        TASKRAIL_DATA_DIR=str(tmp_path / "data"),
        TASKRAIL_SERVER_FILE=str(tmp_path / "server.json"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        PYTHONUNBUFFERED="1",
    )
    return environ


@pytest.fixture
def settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings pointing at the test server; also set in this process's environment."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    default_client.cache_clear()  # producers in this process talk to this test's server
    yield load_settings(env)
    default_client.cache_clear()


class Processes:
    """Starts real processes and always stops them (SIGKILL at teardown)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, args: list[str], *, env: dict[str, str] | None = None, name: str = "proc"
    ) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(args, env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def worker(
        self, *queues: str, name: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A real ``rq worker -w workers.Worker -c config.rq`` process on ``queues``."""
        args = [str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq"]
        if name:
            args += ["--name", name]
        return self.start([*args, *queues], env=env, name=name or "worker")

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(timeout=10)


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Real subprocesses for a test, killed at its end whatever happened."""
    manager = Processes(env, tmp_path)
    yield manager
    manager.stop_all()


def live_workers(conn: redis.Redis) -> set[str]:
    """Names of taskrail workers whose heartbeat is fresh."""
    names = {n.decode() for n in conn.smembers("taskrail:workers")}
    return {n for n in names if conn.exists(f"taskrail:hb:{n}")}


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A page in a real headless Chromium: Debian's ``/usr/bin/chromium`` when present, else Playwright's own
    download (``make browser`` installs one or the other); fails, not skips, when none starts."""
    sync_api: Any = require_module("playwright.sync_api", "run make browser (or make install-test, then make browser)")
    debian = os.access(DEBIAN_CHROMIUM, os.X_OK)  # the same check as .ci/browser
    executable = str(DEBIAN_CHROMIUM) if debian else None  # None: Playwright's own Chromium
    with sync_api.sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )  # fmt: skip
        except sync_api.Error as exc:
            which = executable or "Playwright's own Chromium"
            pytest.fail(f"cannot start {which}: run `make browser` to install a Chromium\n{exc}")
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()


@pytest.fixture
def celery_worker(settings: Settings, procs: Processes) -> subprocess.Popen[bytes]:
    """A live worker on the ``celery`` queue running tests/tasks_celery.py (the test_celery_* files)."""
    proc = procs.worker("celery", env={"TASKRAIL_IMPORTS": "tests.tasks_celery"})
    wait_for(lambda: live_workers(redis.Redis.from_url(settings.redis_url)), 15, what="worker heartbeat")
    return proc
