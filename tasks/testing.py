"""A pytest plugin, like ``celery.contrib.pytest``: ``pytest -p tasks.testing``.

Fixtures (all real: an embedded server process and ``rq worker -w workers.Worker`` processes, no mocks):

- ``taskrail_config``: override it to set the worker's environment, e.g.
  ``{"TASKRAIL_IMPORTS": "myapp.tasks"}``; ``taskrail_queues`` (default ``["default"]``) names the queues.
- ``taskrail_server`` (session): a private embedded server; ``REDIS_URL`` points at it during the session.
- ``taskrail_worker``: a worker on ``taskrail_queues``, started and live before the test, stopped after it;
  the database is emptied before each test that uses it.
- ``taskrail_inprocess_worker`` (``pytest -p workers.testing``, which also has all of the above): the same worker
  on a thread of the test process, as Celery's ``celery_worker``.
- ``taskrail_eager``: eager mode (Celery's ``task_always_eager``) for one test, no server needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config.embedded import EmbeddedServer, start_server
from tasks.core import keys
from tasks.core.client import default_client
from tasks.core.eager import always_eager

__all__ = [
    "taskrail_config",
    "taskrail_eager",
    "taskrail_queues",
    "taskrail_server",
    "taskrail_worker",
]

WORKER_START_S = 30.0


@pytest.fixture
def taskrail_config() -> dict[str, str]:
    """Environment for the worker (override in your conftest.py): ``TASKRAIL_IMPORTS`` and any setting."""
    return {}


@pytest.fixture
def taskrail_queues() -> list[str]:
    """The queues the worker takes jobs from (override in your conftest.py)."""
    return ["default"]


@pytest.fixture(scope="session")
def taskrail_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A private embedded server for the session; REDIS_URL points at it meanwhile."""
    server = start_server(tmp_path_factory.mktemp("taskrail-server"), appendonly=False)
    previous = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = server.url
    default_client.cache_clear()
    try:
        yield server
    finally:
        os.kill(server.pid, signal.SIGTERM)
        if previous is None:
            os.environ.pop("REDIS_URL", None)
        else:
            os.environ["REDIS_URL"] = previous
        default_client.cache_clear()


@pytest.fixture
def taskrail_worker(
    taskrail_server: EmbeddedServer, taskrail_config: dict[str, str], taskrail_queues: list[str], tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process on an emptied database, live before the test starts; stopped after it."""
    conn = redis.Redis.from_url(taskrail_server.url)
    conn.flushdb()
    env = {**os.environ, "REDIS_URL": taskrail_server.url, "PYTHONPATH": os.pathsep.join(sys.path), **taskrail_config}
    env.setdefault("TASKRAIL_DATA_DIR", str(tmp_path / "taskrail"))
    rq = Path(sys.executable).with_name("rq")
    log = open(tmp_path / "taskrail-worker.log", "wb")  # closed after the process ends
    args = [str(rq), "worker", "-w", "workers.Worker", "-c", "config.rq", *taskrail_queues]
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_live(conn, proc, log.name)
        yield proc
    finally:
        _stop(proc)
        log.close()
        conn.close()


@pytest.fixture
def taskrail_eager(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Eager mode for this test: ``.delay()`` runs inline and returns an ``EagerResult``."""
    monkeypatch.setenv("TASKRAIL_ALWAYS_EAGER", "1")
    always_eager.cache_clear()
    yield
    always_eager.cache_clear()


def _wait_live(conn: redis.Redis, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + WORKER_START_S
    while not conn.scard(keys.WORKERS):
        if proc.poll() is not None or time.monotonic() > deadline:
            text = Path(log).read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the taskrail worker did not start (exit {proc.poll()}); its log ends:\n{text}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
