"""``isolation: fork``: each job in a work-horse child; the worker survives the child's death, which fails
the job (``WorkerLostError``, as RQ and Celery fail it) unless its task has ``reject_on_worker_lost=True``."""

from __future__ import annotations

from datetime import datetime

import pytest
import redis
from rq import Callback, Queue, Retry
from rq.job import Dependency, Job, JobStatus
from rq.serializers import JSONSerializer

from tasks import TaskFailed
from tests import tasks_core
from tests import tasks_isolation as lost
from tests.conftest import Processes, live_workers, wait_for

FORK = {"TASKRAIL_IMPORTS": "tests.tasks_core,tests.tasks_isolation", "TASKRAIL_ISOLATION": "fork"}


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


def test_a_work_horse_that_dies_fails_its_job_and_the_worker_lives_on(fork_worker, conn: redis.Redis) -> None:
    result = lost.dies.delay("horse")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=20)
    assert info.value.exc_type == "WorkerLostError"
    assert "Work-horse terminated unexpectedly (signal 9 (SIGKILL))" in info.value.message
    assert "reject_on_worker_lost=True" in info.value.message  # the way to have it run again
    assert int(conn.get("horse")) == 1  # failed at once, not run again
    assert conn.zscore("rq:failed:core", result.id) is not None
    assert conn.hget(f"rq:job:{result.id}", "tr_stalls") is None
    assert fork_worker.poll() is None  # the worker itself lives on
    assert tasks_core.add.delay(1, 2).get(timeout=10) == 3


def test_reject_on_worker_lost_puts_the_job_back_until_max_stalled(fork_worker, conn: redis.Redis) -> None:
    assert lost.dies_rejected.delay("once", 1).get(timeout=20) == 2  # died once, ran again, finished
    result = lost.dies_rejected.delay("always")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=20)
    assert info.value.exc_type == "JobStalled" and "stalled 2 times" in info.value.message
    assert "work-horse process died (signal 9 (SIGKILL))" in info.value.message
    assert int(conn.get("always")) == 2  # ran again once (max_stalled=1), then failed


def test_a_task_that_retries_worker_lost_error_runs_again(fork_worker, conn: redis.Redis) -> None:
    result = lost.dies_retried.delay("retried", 1)
    assert result.get(timeout=20) == 2
    assert conn.hget(f"rq:job:{result.id}", "tr_retries") == b"1"
    with pytest.raises(TaskFailed) as info:  # max_retries=2: three deaths, then the failure
        lost.dies_retried.delay("retried-out").get(timeout=30)
    assert info.value.exc_type == "WorkerLostError" and "failed after 2 retries" in info.value.message
    assert int(conn.get("retried-out")) == 3


def _ended(job: Job, status: JobStatus) -> None:
    wait_for(lambda: job.get_status(refresh=True) == status, 20, what=f"job {job.id} {status}")


def test_rqs_retry_and_on_failure_apply_to_a_dead_work_horse(fork_worker, conn: redis.Redis) -> None:
    queue = Queue("core", connection=conn, serializer=JSONSerializer)
    job = queue.enqueue(lost.dies, "rq-retry", 1, retry=Retry(max=1), on_failure=Callback(lost.note_lost))
    _ended(job, JobStatus.FINISHED)
    assert job.return_value() == 2 and int(conn.get("rq-retry")) == 2
    assert Job.fetch(job.id, conn, serializer=JSONSerializer).retries_left == 0
    assert conn.lrange("lost:failures", 0, -1) == [f"{job.id}|WorkerLostError".encode()]  # RQ: on each failure


def test_a_dead_work_horse_releases_dependents_that_allow_failure(fork_worker, conn: redis.Redis) -> None:
    queue = Queue("core", connection=conn, serializer=JSONSerializer)
    parent = queue.enqueue(lost.dies, "parent")
    allowing = queue.enqueue(lost.mark, "allowing", depends_on=Dependency(jobs=[parent], allow_failure=True))
    strict = queue.enqueue(lost.mark, "strict", depends_on=parent)
    _ended(allowing, JobStatus.FINISHED)
    assert parent.get_status(refresh=True) == JobStatus.FAILED and conn.get("allowing") == b"ran"
    assert strict.get_status(refresh=True) == JobStatus.DEFERRED and conn.get("strict") is None


def test_time_limit_kills_the_work_horse(fork_worker) -> None:
    with pytest.raises(TaskFailed) as info:
        tasks_core.sleeper.delay(30).get(timeout=15)
    assert info.value.exc_type == "TaskTimeout"
    assert fork_worker.poll() is None


def test_revoking_a_running_job_stops_its_work_horse(fork_worker, conn: redis.Redis) -> None:
    result = tasks_core.stepper.delay(300, 0.1)  # 30 s if nothing stops it
    wait_for(lambda: result.state == "STARTED", 10, what="start")
    assert result.revoke() == "stopping"
    wait_for(lambda: result.state == "REVOKED", 10, what="revoked state")
    assert int(conn.hget(f"rq:job:{result.id}", "tr_attempts") or 0) == 1  # stopped, not run again
    assert fork_worker.poll() is None and tasks_core.add.delay(1, 1).get(timeout=10) == 2


THREADS = {"TASKRAIL_IMPORTS": "tests.tasks_core", "TASKRAIL_CONCURRENCY": "2"}


def test_under_threads_a_time_limit_lands_when_a_blocking_call_returns(settings, procs, conn: redis.Redis) -> None:
    # What docs/tasks.md says: off the main thread the limit is raised at the task's next Python instruction,
    # so a 3 s sleep (one C call) runs to its end, and the code after it never runs; fork makes it hard.
    procs.worker("core", env=THREADS)
    result = tasks_core.sleeper.delay(3)  # time_limit=1
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=20)
    assert info.value.exc_type == "TaskTimeout"
    job = conn.hmget(f"rq:job:{result.id}", "started_at", "ended_at")
    started, ended = (datetime.strptime(t.decode(), "%Y-%m-%dT%H:%M:%S.%fZ") for t in job)
    assert (ended - started).total_seconds() >= 3.0  # not before the sleep returned
