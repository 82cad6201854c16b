"""End to end through real ``rq worker -w workers.Worker`` processes and a real server."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tasks import AsyncResult, ResultTimeout, TaskFailed
from tests import tasks_core
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.lua.helpers import run_order
from workers.exitcodes import RET_CONFIG

CORE = {"TASKRAIL_IMPORTS": "tests.tasks_core"}


@pytest.fixture
def worker(settings, procs: Processes) -> subprocess.Popen[bytes]:
    proc = procs.worker("core", env=CORE)
    wait_for(lambda: live_workers(redis.Redis.from_url(settings.redis_url)), 15, what="worker heartbeat")
    return proc


def test_delay_and_get_a_result(worker) -> None:
    result = tasks_core.add.delay(2, 3)
    assert result.get(timeout=10) == 5
    assert result.state == "SUCCESS" and result.successful() and result.ready()
    assert result.attempts == 1 and result.status == "finished"


def test_async_def_task(worker) -> None:
    assert tasks_core.async_add.delay(4, 5).get(timeout=10) == 9


def test_failure_propagates_through_get(worker) -> None:
    result = tasks_core.boom.delay("kaput")
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=10)
    assert info.value.exc_type == "ValueError" and info.value.message == "kaput"
    assert "raise ValueError(message)" in info.value.traceback
    assert result.state == "FAILURE" and result.attempts == 1
    assert isinstance(result.get(timeout=1, propagate=False), TaskFailed)


def test_get_times_out_with_a_timeout_error(settings) -> None:
    result = tasks_core.add.delay(1, 1)  # no worker runs
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        result.get(timeout=0.5)
    assert time.monotonic() - started >= 0.5
    with pytest.raises(ResultTimeout):
        result.get(timeout=0.1)


def test_retries_with_exponential_backoff(worker, conn: redis.Redis) -> None:
    result = tasks_core.flaky_until.delay("attempts", 3)
    assert result.get(timeout=20) == 3
    times = [float(t) for t in conn.lrange("attempts", 0, -1)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # retry_backoff=0.5 without jitter: 0.5 s then 1 s. Never early; how late depends on the machine's load
    # (the promotion's own promptness is tested in test_periodic with its bound from both sides).
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps
    assert result.attempts == 3


def test_retries_exhausted_fail(worker, conn: redis.Redis) -> None:
    result = tasks_core.flaky_until.delay("never", 99)
    with pytest.raises(tasks_core.Flaky, match="attempt 4 fails") as info:  # the task's own error, as Celery
        result.get(timeout=30)
    assert isinstance(info.value, TaskFailed) and "failed after 3 retries" in info.value.message
    assert conn.llen("never") == 4  # the first try and 3 retries


def test_bound_task_retry_and_request(worker) -> None:
    assert tasks_core.asks_retry.delay("asked").get(timeout=10) == 2


def test_progress_is_seen_from_outside(worker) -> None:
    result = tasks_core.stepper.delay(6, 0.3)
    # State first, then progress: both seen mid-run in one poll, however late the poll comes.
    seen = wait_for(
        lambda: result.state == "STARTED" and (p := result.progress) and 0 < p["percent"] < 100 and p, 10,
        what="progress of the started job",
    )  # fmt: skip
    assert seen["note"].startswith("step")
    assert result.get(timeout=10) == 6


def test_revoke_queued_job_never_runs(settings, procs: Processes, tmp_path: Path) -> None:
    canary = tmp_path / "revoked-ran"
    result = tasks_core.touch.delay(str(canary))
    assert result.revoke() == "canceled"
    procs.worker("core", env=CORE)
    follower = tasks_core.add.delay(1, 1)
    assert follower.get(timeout=15) == 2  # the worker got past the revoked job
    assert not canary.exists()
    assert result.state == "REVOKED"


def test_revoke_stops_a_running_job(worker) -> None:
    result = tasks_core.stepper.delay(100, 0.1)
    wait_for(lambda: result.state == "STARTED", 10, what="start")
    assert result.revoke() == "stopping"
    wait_for(lambda: result.state == "REVOKED", 10, what="revoked state")


def test_time_limit_stops_a_long_job(worker) -> None:
    result = tasks_core.sleeper.delay(30)
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=15)
    assert info.value.exc_type == "TaskTimeout"


def test_a_task_module_outside_the_repository(settings, procs: Processes, tmp_path: Path) -> None:
    (tmp_path / "outside_tasks.py").write_text(
        "from tasks import task\n\n@task(queue='outside')\ndef shout(word):\n    return word.upper() + '!'\n"
    )
    env = {"TASKRAIL_IMPORTS": "outside_tasks", "PYTHONPATH": f"{procs.env['PYTHONPATH']}:{tmp_path}"}
    procs.worker("outside", env=env)
    sys.path.insert(0, str(tmp_path))
    try:
        import outside_tasks

        assert outside_tasks.shout.delay("hey").get(timeout=15) == "HEY!"
    finally:
        sys.path.remove(str(tmp_path))


def test_rq_info_sees_queues_workers_and_jobs(worker, env: dict[str, str]) -> None:
    tasks_core.add.delay(1, 2).get(timeout=10)
    out = subprocess.run([str(BIN / "rq"), "info", "-c", "config.rq"], env=env, capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "core" in out.stdout and "1 workers" in out.stdout


def test_rq_requeue_works_on_a_failed_taskrail_job(worker, env: dict[str, str], conn: redis.Redis) -> None:
    failed = tasks_core.boom.delay("once")
    with pytest.raises(TaskFailed):
        failed.get(timeout=10)
    out = subprocess.run([str(BIN / "rq"), "requeue", "-c", "config.rq", "--queue", "core", "--all",
                          "--serializer", "rq.serializers.JSONSerializer"], env=env, capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    wait_for(lambda: AsyncResult(failed.id).attempts == 2, 15, what="second attempt after rq requeue")


def test_sigterm_stops_a_worker_cleanly(settings, procs: Processes, conn: redis.Redis) -> None:
    proc = procs.worker("core", env=CORE)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    proc.terminate()
    assert proc.wait(timeout=15) == 0
    assert not live_workers(conn)
    assert conn.scard("rq:workers") == 0


def test_bad_queue_weights_stop_the_worker_at_start(settings, procs: Processes) -> None:
    proc = procs.worker("core", env={**CORE, "TASKRAIL_MODE": "weighted", "TASKRAIL_QUEUE_WEIGHTS": "core=lots"})
    assert proc.wait(timeout=30) == 2
    assert "TASKRAIL_QUEUE_WEIGHTS" in procs.log(proc)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"TASKRAIL_HEARTBEAT_INTERVAL_S": "nan"}, "TASKRAIL_HEARTBEAT_INTERVAL_S must be a finite number of seconds"),
        ({"TASKRAIL_HEARTBEAT_TTL_S": "inf"}, "TASKRAIL_HEARTBEAT_TTL_S must be a finite number of seconds"),
        ({"TASKRAIL_CONCURRENCY": "0"}, "TASKRAIL_CONCURRENCY must be a whole number >= 1"),
    ],
)
def test_a_bad_setting_stops_the_worker_with_one_line_and_exit_2(
    settings, procs: Processes, bad: dict[str, str], message: str
) -> None:
    proc = procs.worker("core", env={**CORE, **bad})
    assert proc.wait(timeout=30) == RET_CONFIG
    log = procs.log(proc)
    assert f"taskrail: {message}" in log and "Traceback" not in log, log


def test_a_delayed_job_keeps_its_priority_when_it_becomes_due(settings, procs: Processes, conn: redis.Redis) -> None:
    from tasks import pause

    pause("core")  # the leader still promotes due jobs; nobody takes them
    plain = tasks_core.add.enqueue_many([(i, i) for i in range(5)])
    urgent = tasks_core.add.apply_async((0, 0), priority=0, countdown=0.3)
    procs.worker("core", env=CORE)
    wait_for(lambda: len(run_order(conn, "core")) == 6, 15, what="the delayed job to be promoted")
    assert run_order(conn, "core") == [urgent.id] + [r.id for r in plain]


def test_ignore_result_and_result_ttl(settings, procs: Processes, conn: redis.Redis) -> None:
    # Enqueued before the worker starts, so the queued state is seen without racing it.
    ignored = tasks_core.fire_and_forget.delay(21)
    kept = tasks_core.short_lived.delay(7)
    default = tasks_core.add.delay(1, 1)
    assert conn.ttl(f"rq:job:{kept.id}") == -1  # queued: no expiry until the job finishes
    assert conn.ttl(f"rq:job:{default.id}") == -1
    procs.worker("core", env=CORE)
    wait_for(lambda: ignored.state == "SUCCESS", 15, what="ignored-result job")
    assert ignored.get(timeout=1) is None
    assert kept.get(timeout=10) == 7
    assert 0 < conn.ttl(f"rq:job:{kept.id}") <= 30
    assert 0 < conn.ttl(f"rq:results:{kept.id}") <= 30
    assert default.get(timeout=10) == 2
    assert 30 < conn.ttl(f"rq:job:{default.id}") <= settings.result_ttl_s  # no result_ttl: the default
