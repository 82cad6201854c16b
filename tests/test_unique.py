"""Unique jobs: one job per key while it waits or runs; throttle and debounce modes; failures free the key."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime

import pytest
import redis

from tasks import ConfigError, TaskFailed, task
from tests import tasks_sched
from tests.conftest import Processes, live_workers, wait_for

SCHED = {"TASKRAIL_IMPORTS": "tests.tasks_sched"}


@pytest.fixture
def worker(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("default", env=SCHED)
    wait_for(lambda: live_workers(conn), 20, what="a worker")


def test_20_concurrent_enqueues_give_one_job(settings, procs: Processes, conn: redis.Redis) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(20)

    def enqueue() -> None:
        barrier.wait()
        ids.append(tasks_sched.unique_job.delay("same").id)

    threads = [threading.Thread(target=enqueue) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 20 and len(set(ids)) == 1
    assert conn.llen("rq:queue:default") == 1
    unique_key = "taskrail:unique:tests.tasks_sched.unique_job:" + _data("same")
    assert conn.get(unique_key) == ids[0].encode()
    assert tasks_sched.unique_job.delay("other").id != ids[0]  # other arguments, other job

    procs.worker("default", env=SCHED)
    wait_for(lambda: conn.llen("ran:same") == 1, 20, what="the unique job to run")
    wait_for(lambda: not conn.exists(unique_key), 10, what="the unique key to be released")
    again = tasks_sched.unique_job.delay("same")  # completed: a new call makes a new job
    assert again.id != ids[0]
    assert again.get(timeout=20) == "same" and conn.llen("ran:same") == 2


def _data(key: str) -> str:
    """The unique key of ``unique_job(key)``: a digest of its encoded call."""
    return hashlib.sha256(f'["tests.tasks_sched.unique_job",null,["{key}"],{{}}]'.encode()).hexdigest()


def test_a_failed_unique_job_can_be_enqueued_again(worker, conn: redis.Redis) -> None:
    first = tasks_sched.unique_failing.delay("f")
    with pytest.raises(TaskFailed):
        first.get(timeout=20)
    second = tasks_sched.unique_failing.delay("f")
    assert second.id != first.id
    with pytest.raises(TaskFailed):
        second.get(timeout=20)
    assert conn.llen("ran:f") == 2


def test_throttle_keeps_one_job_per_ttl_even_after_it_finished(worker, conn: redis.Redis) -> None:
    options = {"unique_key": "t", "unique_mode": "throttle", "unique_ttl_s": 2}
    first = tasks_sched.save.apply_async(("t", "v1"), **options)
    assert first.get(timeout=20) == "v1"
    throttled = tasks_sched.save.apply_async(("t", "v2"), **options)
    assert throttled.id == first.id  # within the TTL: the finished job stands in
    wait_for(lambda: not conn.exists("taskrail:unique:tests.tasks_sched.save:t"), 10, what="the throttle to lapse")
    later = tasks_sched.save.apply_async(("t", "v3"), **options)
    assert later.id != first.id and later.get(timeout=20) == "v3"
    assert [v.decode() for v in conn.lrange("saved:t", 0, -1)] == ["v1", "v3"]


def test_unique_mode_and_ttl_declared_on_the_task_apply_to_every_call(worker, conn: redis.Redis) -> None:
    first = tasks_sched.throttled_save.delay("d", "v1")
    assert first.get(timeout=20) == "v1"
    assert tasks_sched.throttled_save.delay("d", "v1").id == first.id  # throttled, though it finished
    other = tasks_sched.throttled_save.apply_async(("d", "v1"), unique_mode="until_complete")  # per call wins
    assert other.id != first.id and other.get(timeout=20) == "v1"
    assert [v.decode() for v in conn.lrange("saved:d", 0, -1)] == ["v1", "v1"]


def test_unique_options_are_checked_when_task_runs() -> None:
    def f() -> None: ...

    for options, message in [
        ({"unique_mode": "sometimes"}, "unique_mode must be one of until_complete, throttle, debounce"),
        ({"unique_mode": "throttle"}, "unique_mode 'throttle' needs unique_ttl_s > 0"),
        ({"unique_ttl_s": -1}, "unique_ttl_s must be seconds >= 0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            task(**options)(f)


def test_debounce_runs_once_with_the_newest_arguments_after_the_last_call(worker, conn: redis.Redis) -> None:
    # Calls 0.6 s apart, each pushing the run back a full countdown; 3 s leaves room for a loaded machine
    # (the scenario holds while no call is more than 3 s late).
    options = {"unique_key": "d", "unique_mode": "debounce", "countdown": 3.0}
    first = tasks_sched.save.apply_async(("d", "v1"), **options)
    time.sleep(0.6)  # the caller's own pace, not a wait for the system
    second = tasks_sched.save.apply_async(("d", "v2"), **options)
    time.sleep(0.6)
    last_call = time.time()
    third = tasks_sched.save.apply_async(("d", "v3"), **options)
    assert first.id == second.id == third.id
    assert third.get(timeout=20) == "v3"
    assert conn.lrange("saved:d", 0, -1) == [b"v3"] and third.attempts == 1
    # It ran a full countdown after the last call, not after the first.
    assert _started_epoch(conn, third.id) >= last_call + 2.9


def _started_epoch(conn: redis.Redis, job_id: str) -> float:
    raw = conn.hget(f"rq:job:{job_id}", "started_at")
    assert raw is not None
    return datetime.strptime(raw.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def test_debounce_while_running_queues_a_successor(worker, conn: redis.Redis) -> None:
    options = {"unique_key": "slow", "unique_mode": "debounce"}
    running = tasks_sched.mark.apply_async(("first", 1.0), **options)
    wait_for(lambda: conn.llen("order") == 1, 20, what="the first job to start")
    successor = tasks_sched.mark.apply_async(("second",), **options)
    assert successor.id != running.id  # the newest arguments are not dropped
    assert successor.get(timeout=20) == "second" and running.get(timeout=20) == "first"
