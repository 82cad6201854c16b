"""RQ 3's Repeat and RateLimit against real workers: a repeated job runs again after each success, a
rate-limited job gives its slot to the next waiting job when it ends (RQ's producer side takes slots)."""

from __future__ import annotations

import pytest
import redis
from rq import Queue, Repeat, Retry
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimit, RateLimitRegistry
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from tests import tasks_rqretry as t
from tests.conftest import Processes, live_workers, wait_for


@pytest.fixture
def queue(settings, procs: Processes, conn: redis.Redis) -> Queue:
    """The tests' queue, with a real worker on it."""
    procs.worker("rqretry", env={"TASKRAIL_IMPORTS": "tests.tasks_rqretry"})
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    return Queue("rqretry", connection=conn, serializer=JSONSerializer)


def _fetch(conn: redis.Redis, job: Job) -> Job:
    return Job.fetch(job.id, connection=conn, serializer=JSONSerializer)


def test_a_repeated_job_runs_once_more_per_repeat_then_finishes(conn: redis.Redis, queue: Queue) -> None:
    job = queue.enqueue(t.count, "runs", repeat=Repeat(times=2))
    wait_for(lambda: conn.get("runs") == b"3" and job.get_status(refresh=True) == JobStatus.FINISHED, 20,
             what="three runs")  # fmt: skip
    done = _fetch(conn, job)
    assert done.repeats_left == 0 and done.return_value() == 3 and job.id in FinishedJobRegistry(queue=queue)
    assert [r.return_value for r in done.results()] == [3, 2, 1]
    worker = conn.hgetall(next(iter(conn.smembers("rq:workers"))))
    assert worker[b"successful_job_count"] == b"3"


def test_a_repeat_interval_schedules_the_next_run_and_a_failure_ends_repeats(conn: redis.Redis,
                                                                             queue: Queue) -> None:  # fmt: skip
    job = queue.enqueue(t.count, "runs", repeat=Repeat(times=3, interval=[300, 600]))
    wait_for(lambda: job.get_status(refresh=True) == JobStatus.SCHEDULED, 20, what="scheduled repeat")
    assert job.id in ScheduledJobRegistry(queue=queue) and conn.get("runs") == b"1"
    assert _fetch(conn, job).repeats_left == 2 and _fetch(conn, job).repeat_intervals == [600]
    failing = queue.enqueue(t.flaky, "fails", 99, repeat=Repeat(times=2))
    wait_for(lambda: failing.get_status(refresh=True) == JobStatus.FAILED, 20, what="failed job")
    assert conn.get("fails") == b"1" and _fetch(conn, failing).repeats_left == 2


def test_a_rate_limited_job_frees_its_slot_for_the_next_when_it_ends(conn: redis.Redis, queue: Queue) -> None:
    limit = RateLimit(key="mail", concurrency=1)
    first = queue.enqueue(t.flaky, "first", 1, rate_limit=limit, retry=Retry(max=1, interval=300))
    second = queue.enqueue(t.count, "second", rate_limit=limit)
    third = queue.enqueue(t.count, "third", rate_limit=limit)
    assert second.get_status() == JobStatus.RATE_LIMITED  # RQ's producer side held them back
    registry = RateLimitRegistry(key="mail", connection=conn)
    # first fails and is scheduled for its retry: that frees its slot; second and third then run one at a time.
    # Which of them first is not FIFO, under RQ's worker too: RQ scores the waiting set in whole seconds and
    # ZPOPMIN breaks a tie by job id.
    done = (second, third)
    wait_for(lambda: all(j.get_status(refresh=True) == JobStatus.FINISHED for j in done), 20, what="both done")
    assert first.get_status(refresh=True) == JobStatus.SCHEDULED
    runs = sorted((_fetch(conn, j) for j in done), key=lambda j: j.started_at)
    assert runs[1].started_at >= runs[0].ended_at, "the slot let two jobs run at once"
    assert registry.get_allowed_job_ids() == [] and registry.get_rate_limited_job_ids() == []
