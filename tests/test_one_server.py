"""One embedded server per user: commands, workers and producers from any directory find the same one, or fail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import BIN, ROOT, Processes, live_workers, wait_for

PRODUCE = "from tests.tasks_core import add; print(add.delay(2, 3).get(timeout=30))"


@pytest.fixture
def user(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A user's environment with no REDIS_URL, a private server file, and two project directories."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_") and k != "REDIS_URL"}
    environ.update(TASKRAIL_SERVER_FILE=str(tmp_path / "state" / "server.json"), PYTHONPATH=str(ROOT),
                   TASKRAIL_IMPORTS="tests.tasks_core", PYTHONUNBUFFERED="1")  # fmt: skip
    for name in ("project-a", "project-b"):
        (tmp_path / name).mkdir()
    yield environ
    subprocess.run([str(BIN / "taskrail"), "server", "stop"], env=environ, timeout=60)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_every_command_from_any_directory_uses_the_one_server_or_says_to_start_it(
    user: dict[str, str], tmp_path: Path
) -> None:
    a, b = tmp_path / "project-a", tmp_path / "project-b"
    status = [str(BIN / "taskrail"), "status"]
    produce = [sys.executable, "-c", PRODUCE]
    for args in (status, produce):  # nothing runs: fail at once, saying what to do, and start nothing
        done = run(args, user, b)
        assert done.returncode != 0
        assert "run `taskrail server start`, or set REDIS_URL" in done.stderr, done.stderr
    assert not (b / ".taskrail").exists()

    started = run([str(BIN / "taskrail"), "server", "start"], user, a)
    assert started.returncode == 0, started.stderr
    url = started.stdout.split("embedded server running at ", 1)[1].split(" ", 1)[0]
    assert (a / ".taskrail" / "redis").is_dir()
    named = f"taskrail: using the embedded server at {url} (named by {user['TASKRAIL_SERVER_FILE']})"

    procs = Processes(user, tmp_path)
    try:
        worker = procs.start(
            [str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq", "core"], name="worker"
        )  # fmt: skip  (cwd: the repository, a third directory)
        conn = redis.Redis.from_url(url)
        wait_for(lambda: live_workers(conn), 30, what="the worker on the user's server")
        assert procs.log(worker).splitlines()[0] == named
        produced = run(produce, user, b)
        assert (produced.returncode, produced.stdout) == (0, "5\n"), produced.stderr
        assert produced.stderr.splitlines()[0] == named
        shown = run(status, user, b)
        assert shown.returncode == 0 and shown.stderr.splitlines()[0] == named
        assert "core" in shown.stdout
    finally:
        procs.stop_all()
    assert not (b / ".taskrail").exists()  # one server, in the directory it was started from
    again = run([str(BIN / "taskrail"), "server", "start"], user, b)
    assert f"embedded server running at {url} " in again.stdout and not (b / ".taskrail").exists()
