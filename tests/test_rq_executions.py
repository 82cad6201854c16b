"""RQ 3's execution records under ``rq worker -w workers.Worker``: written for a job still running after
EXECUTION_AFTER_S, gone with its settle, and addressed by ``send_stop_execution_command``."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis
from rq import Worker as RQWorker
from rq.command import send_command, send_stop_execution_command
from rq.exceptions import InvalidJobOperation
from rq.job import Job
from rq.serializers import JSONSerializer

from tests import tasks_rqops as ops
from tests.conftest import Processes, live_workers, wait_for
from tests.test_rq_worker_ops import OPS, started, stays
from workers.executions import EXECUTION_AFTER_S, ExecutionRecords
from workers.interrupts import Slot
from workers.runner import ClaimedJob

MODES = {"inline": {}, "fork": {"TASKRAIL_ISOLATION": "fork"}}


def _job(conn: redis.Redis, job_id: str) -> Job:
    return Job.fetch(job_id, connection=conn, serializer=JSONSerializer)


def _no_execution_left(conn: redis.Redis, job_id: str, worker: str) -> bool:
    keys = (f"rq:execution:{job_id}:{worker}", f"rq:executions:{job_id}", f"rq:worker:{worker}:executions")
    return not conn.exists(*keys) and conn.hget(f"rq:job:{job_id}", "tr_exec") is None


@pytest.fixture(params=list(MODES))
def worker(request: pytest.FixtureRequest, settings, procs: Processes, conn: redis.Redis) -> str:
    procs.worker("ops", name="ops1", env={**OPS, **MODES[request.param]})
    wait_for(lambda: "ops1" in live_workers(conn), 15, what="worker heartbeat")
    return "ops1"


def test_a_long_job_shows_its_execution_until_it_ends(worker: str, conn: redis.Redis) -> None:
    running = ops.nap.delay(2)
    job = _job(conn, running.id)
    executions = wait_for(job.get_executions, 10, what="the job's execution record")
    assert [(e.id, e.job_id, e.worker_name) for e in executions] == [(worker, running.id, worker)]  # type: ignore[union-attr]
    hydrated = RQWorker.find_by_key(f"rq:worker:{worker}", connection=conn)
    assert hydrated is not None and hydrated.get_current_job_id() == running.id  # RQ reads the worker's index
    assert running.get(timeout=15) == 2
    assert job.get_executions() == [] and _no_execution_left(conn, running.id, worker)


def test_stop_execution_stops_the_job_and_another_execution_id_is_ignored(worker: str, conn: redis.Redis) -> None:
    running = ops.nap.delay(30)
    job = _job(conn, running.id)
    with pytest.raises(InvalidJobOperation):  # RQ's sender: no execution with that id
        send_stop_execution_command(conn, job_id=running.id, execution_id="nonexistent")
    [execution] = wait_for(job.get_executions, 10, what="the job's execution record")  # type: ignore[misc]
    send_command(conn, worker, "stop-execution", job_id=running.id, execution_id="nonexistent")
    stays(lambda: started(conn, running.id), 0.5, "a stop-execution for another execution left the job running")
    send_stop_execution_command(conn, job_id=running.id, execution_id=execution.id)
    wait_for(lambda: job.get_status(refresh=True) == "stopped", 10, what="stopped status")
    assert conn.zscore("rq:failed:ops", running.id) is not None and running.state == "REVOKED"
    assert _no_execution_left(conn, running.id, worker)
    assert ops.nap.delay(0).get(timeout=10) == 0  # the worker carries on


def test_only_a_job_running_past_the_threshold_gets_a_record(settings, conn: redis.Redis) -> None:
    ops.nap.delay(0)  # a job hash for the record, in a worker's claim
    [job_id] = [key.decode().removeprefix("rq:job:") for key in conn.scan_iter("rq:job:*")]
    conn.hset(f"rq:job:{job_id}", mapping={"status": "started", "tr_attempts": 1})
    conn.hset("taskrail:claims:w1", job_id, "ops")
    records = ExecutionRecords(conn, "w1", settings.heartbeat_ttl_s)
    slot = Slot(0, job=replace(ClaimedJob.orphan(job_id, "ops"), attempts=1), job_id=job_id, started_at=time.time())
    records.tick([slot], now=slot.started_at + EXECUTION_AFTER_S / 2)
    assert _no_execution_left(conn, job_id, "w1")  # young: nothing written
    records.tick([slot], now=slot.started_at + EXECUTION_AFTER_S)
    assert conn.hget(f"rq:execution:{job_id}:w1", "worker_name") == b"w1"
    records.tick([Slot(0)])  # the job ended: forgotten, nothing sent
    assert not records._written
