"""``isolation: fork``: each job in a work-horse child; the worker survives the child's death."""

from __future__ import annotations

import pytest
import redis

from tasks import TaskFailed
from tests import tasks_core
from tests.conftest import Processes, live_workers, wait_for

FORK = {"TASKRAIL_IMPORTS": "tests.tasks_core", "TASKRAIL_ISOLATION": "fork"}


@pytest.fixture
def fork_worker(settings, procs: Processes, conn: redis.Redis):
    proc = procs.worker("core", env=FORK)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    return proc


def test_jobs_run_in_a_child_process(fork_worker) -> None:
    first = tasks_core.whoami.delay().get(timeout=10)
    second = tasks_core.whoami.delay().get(timeout=10)
    assert first != second != fork_worker.pid
    assert tasks_core.add.delay(2, 2).get(timeout=10) == 4


def test_killed_work_horse_is_a_stall_then_a_failure(fork_worker, conn: redis.Redis) -> None:
    result = tasks_core.die_hard.delay("horse")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=20)
    assert info.value.exc_type == "JobStalled" and "stalled 2 times" in info.value.message
    assert "work-horse process died (signal 9)" in info.value.message
    assert int(conn.get("horse")) == 2  # ran again once (max_stalled=1), then failed
    assert fork_worker.poll() is None  # the worker itself lives on
    assert tasks_core.add.delay(1, 2).get(timeout=10) == 3


def test_time_limit_kills_the_work_horse(fork_worker) -> None:
    with pytest.raises(TaskFailed) as info:
        tasks_core.sleeper.delay(30).get(timeout=15)
    assert info.value.exc_type == "TaskTimeout"
    assert fork_worker.poll() is None
