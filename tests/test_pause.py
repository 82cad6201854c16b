"""Pausing one queue: workers skip it, enqueues still succeed, running jobs finish, resume restarts it."""

from __future__ import annotations

import subprocess

import pytest
import redis

from tasks import ConfigError
from tasks.core.queues import is_paused, pause, paused_queues, resume
from tests import tasks_sched
from tests.conftest import BIN, Processes, live_workers, wait_for

SCHED = {"TASKRAIL_IMPORTS": "tests.tasks_sched"}


def _taskrail(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "taskrail"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _order(conn: redis.Redis) -> list[str]:
    return [tag.decode() for tag in conn.lrange("order", 0, -1)]


def test_pause_and_resume_from_the_command_line(settings, env, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("default", "bulk", env=SCHED)  # default first: it would be served first
    wait_for(lambda: live_workers(conn), 20, what="a worker")
    assert "default: paused, 0 jobs waiting" in _taskrail(env, "pause", "default")
    held = tasks_sched.mark.enqueue_many([(f"held-{i}",) for i in range(5)])  # enqueues still succeed
    tasks_sched.mark.enqueue_many([(f"bulk-{i}",) for i in range(3)], queue="bulk")
    wait_for(lambda: conn.llen("order") == 3, 20, what="the bulk jobs")
    # The worker reached bulk, so it looked at default first and skipped it.
    assert _order(conn) == ["bulk-0", "bulk-1", "bulk-2"]
    assert conn.llen("rq:queue:default") == 5 and all(r.status == "queued" for r in held)
    assert "default: resumed" in _taskrail(env, "resume", "default")
    wait_for(lambda: conn.llen("order") == 8, 10, what="the held jobs after resume")
    assert _order(conn)[3:] == [f"held-{i}" for i in range(5)]


def test_a_running_job_finishes_while_its_queue_is_paused(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("default", "bulk", env=SCHED)
    running = tasks_sched.mark.delay("running", 1.0)
    wait_for(lambda: conn.llen("order") == 1, 20, what="the job to start")
    assert pause("default")
    waiting = tasks_sched.mark.delay("waiting")
    assert running.get(timeout=20) == "running"
    tasks_sched.mark.apply_async(("bulk",), queue="bulk")
    wait_for(lambda: conn.llen("order") == 2, 20, what="the bulk job")
    assert _order(conn) == ["running", "bulk"] and waiting.status == "queued"
    assert resume("default")
    assert waiting.get(timeout=20) == "waiting"


def test_python_api(settings) -> None:
    assert not is_paused("email") and paused_queues() == set()
    assert pause("email") is True and pause("email") is False
    assert is_paused("email") and paused_queues() == {"email"}
    assert resume("email") is True and resume("email") is False
    assert not is_paused("email")
    with pytest.raises(ConfigError, match="not a queue name"):
        pause("no spaces allowed")
