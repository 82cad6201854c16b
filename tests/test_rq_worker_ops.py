"""RQ's worker operations on real ``rq worker -w workers.Worker`` processes: commands, suspension,
statistics, ``--max-jobs``, the current job, dequeue strategies and exception handlers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import pytest
import redis
from rq.command import send_command, send_kill_horse_command, send_shutdown_command, send_stop_job_command
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from tasks.core import keys
from tests import tasks_rqops as ops
from tests.conftest import BIN, Processes, live_workers, wait_for
from workers import Worker
from workers.exitcodes import RET_OK, RET_RECYCLE

OPS = {"TASKRAIL_IMPORTS": "tests.tasks_rqops"}
RQ_WORKER = [str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq"]


def rq(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN / "rq"), *args, "-c", "config.rq"], env=env, capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out


def stays(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Fail the test if ``predicate`` turns false within ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), what
        time.sleep(0.05)


def started(conn: redis.Redis, job_id: str) -> bool:
    return conn.hget(f"rq:job:{job_id}", "status") == b"started"


@pytest.fixture
def worker(settings, procs: Processes, conn: redis.Redis) -> subprocess.Popen[bytes]:
    proc = procs.worker("ops", name="ops1", env=OPS)
    wait_for(lambda: "ops1" in live_workers(conn), 15, what="worker heartbeat")
    return proc


def test_shutdown_command_stops_the_worker_after_its_running_job(worker, conn: redis.Redis) -> None:
    running = ops.nap.delay(1)
    wait_for(lambda: started(conn, running.id), 10, what="job start")
    send_shutdown_command(conn, "ops1")
    assert worker.wait(timeout=15) == RET_OK
    assert running.get(timeout=1) == 1  # finished, not interrupted: a graceful stop


@pytest.mark.parametrize("pool", ["threads", "asyncio"])
def test_a_job_enqueued_after_a_shutdown_command_stays_queued_never_started(
    settings, procs: Processes, conn: redis.Redis, pool: str
) -> None:
    proc = procs.worker("ops", name="ops1", env={**OPS, "TASKRAIL_POOL": pool})
    wait_for(lambda: "ops1" in live_workers(conn), 15, what="worker heartbeat")
    send_shutdown_command(conn, "ops1")
    # RQ's record of the stop, which the server then reads: it claims nothing more for this worker, not even
    # with the claim already queued behind the worker's blocking wait
    wait_for(lambda: Worker.find_by_key("rq:worker:ops1", connection=conn).shutdown_requested_date, 10,
             what="shutdown_requested_date")  # fmt: skip
    later = ops.nap.delay(0)
    assert proc.wait(timeout=15) == RET_OK
    assert conn.hget(f"rq:job:{later.id}", "status") == b"queued"
    events = [fields for _, fields in conn.xrange(keys.EVENTS.format("ops")) if fields[b"job"] == later.id.encode()]
    assert b"started" not in [e[b"event"] for e in events], events


def test_stop_job_command_marks_the_running_job_stopped_in_the_failed_registry(worker, conn: redis.Redis) -> None:
    running = ops.nap.delay(30)
    wait_for(lambda: started(conn, running.id), 10, what="job start")
    send_command(conn, "ops1", "stop-job", job_id="not-mine")  # ignored: this worker does not run it
    stays(lambda: started(conn, running.id), 0.5, "a stop-job for another job left this one running")
    send_stop_job_command(conn, running.id, serializer=JSONSerializer)
    job = Job.fetch(running.id, connection=conn, serializer=JSONSerializer)
    wait_for(lambda: job.get_status(refresh=True) == "stopped", 10, what="stopped status")
    assert conn.zscore("rq:failed:ops", running.id) is not None
    result = job.latest_result()
    assert result is not None and result.type == Result.Type.FAILED and "stopped by user" in (result.exc_string or "")
    assert running.state == "REVOKED"
    assert ops.nap.delay(0).get(timeout=10) == 0  # the worker carries on


def test_kill_horse_command_kills_the_forked_work_horse_and_fails_its_job(
    settings, procs: Processes, conn: redis.Redis
) -> None:
    procs.worker("ops", name="ops1", env={**OPS, "TASKRAIL_ISOLATION": "fork"})
    wait_for(lambda: "ops1" in live_workers(conn), 15, what="worker heartbeat")
    running = ops.nap.delay(30, "ops:horse")
    horse = int(wait_for(lambda: conn.get("ops:horse"), 10, what="work-horse running the job"))  # type: ignore[arg-type]
    send_kill_horse_command(conn, "ops1")
    wait_for(lambda: running.state == "FAILURE", 10, what="failed job")
    with pytest.raises(ProcessLookupError):
        os.kill(horse, 0)  # killed and reaped
    assert conn.zscore("rq:failed:ops", running.id) is not None
    assert conn.hget(f"rq:job:{running.id}", "tr_exc_type") == b"HorseKilled"
    assert ops.nap.delay(0).get(timeout=10) == 0


def test_rq_suspend_holds_new_jobs_until_rq_resume(worker, env: dict[str, str], conn: redis.Redis) -> None:
    rq(env, "suspend")
    wait_for(lambda: conn.hget("rq:worker:ops1", "state") == b"suspended", 10, what="suspended state")
    held = ops.nap.delay(0)
    stays(lambda: conn.lrange("rq:queue:ops", 0, -1) == [held.id.encode()], 4, "a suspended worker took a job")
    rq(env, "resume")
    assert held.get(timeout=10) == 0


def test_rq_info_shows_the_workers_finished_and_failed_counts(worker, env: dict[str, str], conn: redis.Redis) -> None:
    for result in [ops.nap.delay(0.01) for _ in range(3)]:
        result.get(timeout=10)
    ops.crash.delay("no").get(timeout=10, propagate=False)
    out = rq(env, "info", "ops").stdout
    assert "jobs: 3 finished, 1 failed" in out, out
    seen = Worker.find_by_key("rq:worker:ops1", connection=conn)
    assert seen is not None and seen.total_working_time >= 0.03


def test_rq_max_jobs_exits_0_and_taskrail_max_jobs_recycles(settings, procs: Processes, conn: redis.Redis) -> None:
    results = ops.nap.enqueue_many([(0,)] * 3)
    proc = procs.start([*RQ_WORKER, "--max-jobs", "2", "ops"], env=OPS, name="maxjobs")
    assert proc.wait(timeout=30) == RET_OK, procs.log(proc)
    assert [r.state for r in results] == ["SUCCESS", "SUCCESS", "PENDING"]  # the third never claimed
    assert conn.llen("rq:queue:ops") == 1
    recycled = procs.start([*RQ_WORKER, "ops"], env={**OPS, "TASKRAIL_MAX_JOBS": "1"}, name="recycle")
    assert recycled.wait(timeout=30) == RET_RECYCLE
    assert results[2].state == "SUCCESS"


def test_current_job_is_the_job_a_slot_runs(settings, conn: redis.Redis) -> None:
    result = ops.nap.delay(0)
    worker = Worker(["ops"], connection=conn, settings=settings)
    assert worker.get_current_job_id() is None and worker.get_current_job() is None
    worker.slots[0].job_id = result.id
    assert worker.get_current_job_id() == result.id
    job = worker.get_current_job()
    assert job is not None and job.id == result.id and job.origin == "ops"


def test_current_job_of_an_execution_rqs_own_methods_prepared(settings, conn: redis.Redis) -> None:
    other = ops.nap.delay(0)
    worker = Worker(["ops"], connection=conn, settings=settings)
    execution = worker.prepare_execution(Job.fetch(other.id, connection=conn, serializer=JSONSerializer))
    assert worker.get_current_job_id() == other.id and worker.get_current_job() is execution._job
    worker.slots[0].job_id = "running"  # a job a slot runs comes first
    assert worker.get_current_job_id() == "running"


@pytest.mark.parametrize("strategy", ["round_robin", "random"])
def test_dequeue_strategy_orders_queues_as_rq_does(
    strategy: str, settings, procs: Processes, conn: redis.Redis
) -> None:
    queues = [f"q{i}" for i in range(4)]
    for q in queues:
        for j in range(3):
            ops.note.apply_async(("order", f"{q}_{j}"), queue=q)
    proc = procs.start([*RQ_WORKER, "--burst", "--dequeue-strategy", strategy, *queues], env=OPS, name=strategy)
    assert proc.wait(timeout=30) == RET_OK, procs.log(proc)
    order = [v.decode() for v in conn.lrange("order", 0, -1)]
    serial = [f"{q}_{j}" for q in queues for j in range(3)]
    round_robin = [f"{q}_{j}" for j in range(3) for q in queues]
    assert sorted(order) == sorted(serial)
    if strategy == "round_robin":
        assert order == round_robin
    else:
        assert order not in (serial, round_robin), order


def test_exception_handler_option_runs_for_a_failed_job(settings, procs: Processes, conn: redis.Redis) -> None:
    handler = "tests.tasks_rqops.record_failure"
    failed = ops.crash.delay("bad input")
    ok = ops.nap.delay(0)
    proc = procs.start([*RQ_WORKER, "--burst", "--exception-handler", handler, "ops"], env=OPS, name="handler")
    assert proc.wait(timeout=30) == RET_OK, procs.log(proc)
    assert ok.state == "SUCCESS"
    assert [h.decode() for h in conn.lrange("ops:handled", 0, -1)] == [f"{failed.id}|ValueError|bad input|ops"]


def test_disabled_default_exception_handler_keeps_a_failed_job_out_of_the_failed_registry(
    settings, procs: Processes, conn: redis.Redis
) -> None:
    failed = ops.crash.delay("unfiled")
    proc = procs.start([*RQ_WORKER, "--burst", "--disable-default-exception-handler", "ops"], env=OPS, name="nodefault")
    assert proc.wait(timeout=30) == RET_OK, procs.log(proc)
    assert failed.state == "FAILURE" and conn.zscore("rq:failed:ops", failed.id) is None


def test_a_worker_that_ran_jobs_leaves_rqs_state_idle_when_it_exits(settings, procs: Processes,
                                                                    conn: redis.Redis) -> None:  # fmt: skip
    ops.nap.delay(0)
    proc = procs.start([*RQ_WORKER, "--burst", "--name", "leaver", "ops"], env=OPS, name="leaver")
    assert proc.wait(timeout=30) == RET_OK, procs.log(proc)
    assert conn.hget("rq:worker:leaver", "state") == b"idle" and conn.hget("rq:worker:leaver", "death")


def test_a_worker_started_while_suspended_claims_nothing(settings, conn: redis.Redis) -> None:
    """RQ checks suspension before its first dequeue: work(burst=True) right after `rq suspend` runs nothing."""
    result = ops.nap.delay(0)
    worker = Worker(["ops"], connection=conn, settings=settings)
    suspend(conn)
    worker.work(burst=True)
    assert conn.lrange("rq:queue:ops", 0, -1) == [result.id.encode()] and result.state == "PENDING"
    resume(conn)
    worker.work(burst=True)
    assert result.get(timeout=5) == 0 and conn.llen("rq:queue:ops") == 0


def test_an_idle_worker_claims_in_its_wait_and_is_busy_from_the_jobs_start(worker, conn: redis.Redis) -> None:
    """The wait and the claim are one round trip: the claim writes the server's time, not the wait's start, and
    RQ's state is busy while the job runs, idle again once it is done."""
    # in its blocking wait (up to 1 s), the claim queued behind it: both sent before the enqueue
    wait_for(lambda: any(c["cmd"] == "blpop" for c in conn.client_list()), 10, what="worker waiting")
    running = ops.nap.delay(1.5)
    wait_for(lambda: started(conn, running.id), 10, what="job start")
    assert conn.hget("rq:worker:ops1", "state") == b"busy"
    job = Job.fetch(running.id, connection=conn, serializer=JSONSerializer)
    assert job.enqueued_at <= job.started_at  # a claim's own time would be up to 1 s before the enqueue
    assert running.get(timeout=10) == 1.5
    wait_for(lambda: conn.hget("rq:worker:ops1", "state") == b"idle", 10, what="idle again")
