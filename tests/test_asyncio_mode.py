"""``pool: asyncio`` (workers/aio.py) through real ``rq worker -w workers.Worker`` processes: many ``async def``
jobs at once on one event loop sharing one claim/settle stream, stops that reach async jobs, mixed sync
and async tasks, and RQ's and Celery's per-job features."""

from __future__ import annotations

import signal
import subprocess

import pytest
import redis
from rq import Callback, Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from config.errors import ConfigError, TaskFailed
from config.settings import load_settings
from tasks.core import keys
from tests import tasks_async as t
from tests.conftest import BIN, Processes, live_workers, wait_for

JOBS = 10_000
CONCURRENCY = 1_000


def _worker(procs: Processes, conn: redis.Redis, concurrency: int = 100, **env: str) -> subprocess.Popen[bytes]:
    """A live asyncio-mode worker on the test queue."""
    environ = {"TASKRAIL_IMPORTS": "tests.tasks_async", "TASKRAIL_POOL": "asyncio",
               "TASKRAIL_CONCURRENCY": str(concurrency), **env}  # fmt: skip
    proc = procs.worker(t.QUEUE, env=environ)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    return proc


def _events(conn: redis.Redis) -> list[str]:
    return [e.decode() for e in conn.lrange(t.EVENTS_KEY, 0, -1)]


def _script_calls(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval", "fcall"))


def test_10000_async_jobs_at_concurrency_1000_each_run_exactly_once(settings, procs: Processes,
                                                                    conn: redis.Redis) -> None:  # fmt: skip
    results = t.count.enqueue_many([(i,) for i in range(JOBS)])
    scripts_before = _script_calls(conn)
    _worker(procs, conn, CONCURRENCY)
    finished = keys.FINISHED.format(t.QUEUE)
    wait_for(lambda: conn.zcard(finished) >= JOBS, 60, interval=0.2, what=f"{JOBS} finished jobs")  # ~10 s here
    runs = conn.hgetall(t.RUNS_KEY)
    assert len(runs) == JOBS and set(runs.values()) == {b"1"}  # every job ran, none twice
    assert {r.id.encode() for r in results} == set(runs)
    assert sorted(r.get(timeout=5) for r in results[:100]) == list(range(100))
    assert conn.llen(keys.QUEUE.format(t.QUEUE)) == 0 and conn.zcard(keys.FAILED.format(t.QUEUE)) == 0
    # One claim/settle stream: claims and settles carry many jobs each, not one round trip per job.
    assert _script_calls(conn) - scripts_before < JOBS / 5


def test_a_time_limit_cancels_an_async_job_at_its_await(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn)
    result = t.hang.delay(60)
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=15)
    assert info.value.exc_type == "TaskTimeout"
    wait_for(lambda: "cancelled:hang" in _events(conn), 5, what="the task saw its cancellation")
    assert t.nap.delay(0.01, "after").get(timeout=10) == "after"  # the worker carries on


def test_revoke_stops_a_running_async_job(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn)
    result = t.nap.delay(30, "revoked")
    wait_for(lambda: result.state == "STARTED", 10, what="start")
    assert result.revoke() == "stopping"
    wait_for(lambda: result.state == "REVOKED", 10, what="revoked state")
    assert "done:revoked" not in _events(conn)


def test_sigterm_drains_running_async_jobs(settings, procs: Processes, conn: redis.Redis) -> None:
    proc = _worker(procs, conn, TASKRAIL_SHUTDOWN_TIMEOUT_S="20")
    results = [t.nap.delay(1.0, f"j{i}") for i in range(20)]
    wait_for(lambda: all(r.state == "STARTED" for r in results), 10, what="all 20 started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    assert [r.state for r in results] == ["SUCCESS"] * 20


def test_the_shutdown_deadline_requeues_async_jobs_still_running(settings, procs: Processes,
                                                                 conn: redis.Redis) -> None:  # fmt: skip
    proc = _worker(procs, conn, TASKRAIL_SHUTDOWN_TIMEOUT_S="1")
    result = t.nap.delay(60, "long")
    wait_for(lambda: result.state == "STARTED", 10, what="start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert conn.lrange(keys.QUEUE.format(t.QUEUE), 0, -1) == [result.id.encode()]  # back to its queue
    assert "done:long" not in _events(conn)


def test_an_idle_worker_claims_in_its_wait_and_runs_that_claim_through_a_stop(settings, procs: Processes,
                                                                              conn: redis.Redis) -> None:  # fmt: skip
    proc = procs.worker(t.QUEUE, name="waiter", env={"TASKRAIL_IMPORTS": "tests.tasks_async", "TASKRAIL_POOL": "asyncio",
                                                     "TASKRAIL_CONCURRENCY": "10"})  # fmt: skip
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    held = t.hold_loop.delay("gate:held")
    wait_for(lambda: "holding" in _events(conn), 10, what="the event loop held by a job")
    # The loop runs nothing now: only the thread waiting for work can claim the next job.
    second = t.nap.delay(0.01, "second")
    wait_for(lambda: conn.hexists(keys.CLAIMS.format("waiter"), second.id), 10, what="the waiter's claim")
    assert conn.llen(keys.QUEUE.format(t.QUEUE)) == 0 and second.state == "STARTED"  # as RQ shows it
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stop requested" in procs.log(proc), 10, what="the stop, seen while the loop is held")
    wait_for(lambda: conn.hexists("rq:worker:waiter", "shutdown_requested_date"), 5, what="the stop recorded")
    third = t.nap.delay(0.01, "third")  # after the stop: no claim takes it
    conn.rpush("gate:held", 1)
    assert proc.wait(timeout=15) == 0
    assert held.get(timeout=5) == "released"
    # Claimed before the stop (the server's claim came first): it runs to its end, as a graceful stop promises.
    assert second.get(timeout=5) == "second" and "done:second" in _events(conn)
    assert conn.lrange(keys.QUEUE.format(t.QUEUE), 0, -1) == [third.id.encode()] and third.state == "PENDING"
    assert conn.hlen(keys.CLAIMS.format("waiter")) == 0 and not conn.sismember(keys.WORKERS, "waiter")


def test_a_burst_worker_runs_what_is_queued_then_exits_holding_nothing(settings, procs: Processes,
                                                                       conn: redis.Redis) -> None:  # fmt: skip
    results = [t.nap.delay(0.01 * (i % 3), f"b{i}") for i in range(30)]
    env = {"TASKRAIL_IMPORTS": "tests.tasks_async", "TASKRAIL_POOL": "asyncio", "TASKRAIL_CONCURRENCY": "8"}
    proc = procs.start([str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq", "--burst",
                        "--name", "burst", t.QUEUE], env=env, name="burst")  # fmt: skip
    assert proc.wait(timeout=30) == 0
    assert [r.state for r in results] == ["SUCCESS"] * 30
    assert conn.hlen(keys.CLAIMS.format("burst")) == 0 and not conn.sismember(keys.WORKERS, "burst")


def test_sync_and_async_tasks_share_one_worker(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn, 10)
    blocked = [t.blocking.delay(f"gate:{i}") for i in range(2)]
    wait_for(lambda: all(r.state == "STARTED" for r in blocked), 10, what="blocking jobs started")
    assert t.loop_thread.delay().get(timeout=10) == "MainThread"  # the loop runs while two threads block
    assert [r.state for r in blocked] == ["STARTED", "STARTED"]
    conn.rpush("gate:0", 1)
    conn.rpush("gate:1", 1)
    assert all(r.get(timeout=10).startswith("taskrail-pool") for r in blocked)


def test_each_async_job_sees_its_own_current_job(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn)
    results = [t.whoami.delay(0.05 * (i % 5)) for i in range(50)]
    assert all(r.get(timeout=15) == [r.id, r.id] for r in results)


def test_rq_retry_and_callbacks_reach_async_jobs(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn)
    queue = Queue(t.QUEUE, connection=conn, serializer=JSONSerializer)
    retried = queue.enqueue(t.flaky, "runs:a", 2, retry=Retry(max=3), on_success=Callback(t.on_ok))
    failed = queue.enqueue(t.flaky, "runs:b", 9, on_failure=Callback(t.on_fail))
    returned = queue.enqueue(t.again, "runs:c")
    for job, status in ((retried, JobStatus.FINISHED), (failed, JobStatus.FAILED), (returned, JobStatus.FINISHED)):
        wait_for(lambda j=job, s=status: j.get_status(refresh=True) == s, 20, what=f"job {job.id} {status}")
    assert int(conn.get("runs:a") or 0) == 3 and int(conn.get("runs:c") or 0) == 2
    assert Job.fetch(returned.id, connection=conn, serializer=JSONSerializer).return_value() == "second"
    wait_for(lambda: f"failure-callback:{failed.id}:ZeroDivisionError" in _events(conn), 10, what="on_failure")
    assert f"success-callback:{retried.id}:ok" in _events(conn)


def test_task_signals_fire_around_async_jobs(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn, TASKRAIL_IMPORTS="tests.tasks_async,tests.tasks_async_signals")
    result = t.nap.delay(0.01, "signalled")
    assert result.get(timeout=10) == "signalled"
    wait_for(lambda: f"postrun:{result.id}:SUCCESS" in _events(conn), 5, what="task_postrun")
    events = _events(conn)
    assert (
        events.index(f"prerun:{result.id}")
        < events.index("done:signalled")
        < events.index(f"postrun:{result.id}:SUCCESS")
    )


def test_an_unknown_pool_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigError, match="TASKRAIL_POOL"):
        load_settings({"TASKRAIL_POOL": "gevent"})
    with pytest.raises(ConfigError, match="fork"):
        load_settings({"TASKRAIL_POOL": "asyncio", "TASKRAIL_ISOLATION": "fork"})
