"""Celery's example programs and guide snippets (tests/celery_examples/, only imports changed) run through
real workers, checked against what Celery's documentation says each does."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tasks import AsyncResult, TaskRevoked
from tests.celery_examples import demoapp, guide, myapp
from tests.celery_examples.proj import tasks as proj
from tests.celery_examples.tutorial import tasks as tutorial
from tests.conftest import Processes, live_workers, wait_for

MODULES = ",".join(f"tests.celery_examples.{m}" for m in ("myapp", "tutorial.tasks", "proj.tasks", "demoapp", "guide"))


@pytest.fixture
def worker(settings, procs: Processes) -> subprocess.Popen[bytes]:
    proc = procs.worker("default", "lopri", "priority.high", env={"TASKRAIL_IMPORTS": MODULES})
    wait_for(lambda: live_workers(redis.Redis.from_url(settings.redis_url)), 15, what="worker heartbeat")
    return proc


def test_examples_app_and_tutorial(worker) -> None:
    assert myapp.add.delay(16, 16).get() == 32  # myapp.py's usage docstring
    result = tutorial.add.delay(4, 4)  # First Steps: "Keeping results"
    assert result.get(timeout=10) == 8 and result.ready() and result.successful()


def test_next_steps_calling_tasks(worker) -> None:
    assert proj.add.delay(2, 2).get(timeout=10) == 4
    assert proj.add.apply_async((2, 2), queue="lopri", countdown=0.2).get(timeout=10) == 4
    assert proj.xsum.delay([1, 2, 3, 4]).get(timeout=10) == 10
    res = proj.add.delay(2, "2")  # Next Steps: a task that raises
    error = res.get(propagate=False, timeout=10)
    assert isinstance(error, TypeError) and res.failed() and not res.successful() and res.state == "FAILURE"
    with pytest.raises(TypeError):
        res.get(timeout=1)
    assert AsyncResult(res.id).id == res.id


def test_django_demoapp_retry_kwargs(worker, conn: redis.Redis) -> None:
    assert demoapp.mul.delay(6, 7).get(timeout=10) == 42
    failing = demoapp.error_task.delay()
    wait_for(lambda: failing.state == "RETRY", 10, what="the first retry")
    due = conn.zscore("rq:scheduled:default", failing.id)
    assert due is not None and 590 < due - time.time() <= 600  # "10 minutes between retries"
    backoff = demoapp.error_backoff_test.delay()
    wait_for(lambda: backoff.state == "RETRY", 10, what="the first retry")
    due = conn.zscore("rq:scheduled:default", backoff.id)
    assert due is not None and 3 < due - time.time() <= 5  # "first retry: 5s" with retry_jitter=False


def test_tasks_guide_custom_states(worker, conn: redis.Redis) -> None:
    result = guide.upload_files.delay(["a", "b"])
    wait_for(lambda: result.state == "PROGRESS", 10, what="PROGRESS")
    assert result.info == {"current": 0, "total": 2}
    conn.rpush("uploads:go", 1, 1)
    assert result.get(timeout=10) == 2


def test_tasks_guide_retrying(worker, conn: redis.Redis) -> None:
    conn.set("twitter:down", 2)
    assert guide.send_twitter_status.delay("oauth", "hello").get(timeout=10) is None
    assert conn.lrange("tweets", 0, -1) == [b"hello"]
    conn.set("twitter:down", 100)  # down for longer than 5 retries: the last error comes back
    with pytest.raises(guide.FailWhaleError):
        guide.refresh_timeline.delay("ann").get(timeout=15)


def test_tasks_guide_ignore_and_instantiation(worker, conn: redis.Redis) -> None:
    conn.sadd("tasks.revoked", "revoked-1")
    with pytest.raises(TaskRevoked):
        guide.some_task.apply_async(task_id="revoked-1").get(timeout=10)
    assert guide.some_task.delay().get(timeout=10) == "ran"
    assert guide.process_rows.delay().get(timeout=10) == ["connections"]


def test_calling_guide_linking(worker, conn: redis.Redis) -> None:
    assert guide.add.apply_async((2, 2), link=guide.add.s(16).set(job_id="linked")).get(timeout=10) == 4
    assert AsyncResult("linked").get(timeout=10) == 20  # "the result will be 4 + 16 = 20"
    failed = guide.add.apply_async((2, "2"), link_error=guide.error_handler.s())
    wait_for(lambda: conn.llen("errors"), 10, what="the errback")
    assert conn.lrange("errors", 0, -1)[0].decode().startswith(f"Task {failed.id} raised exception: TypeError(")


def test_calling_guide_expiration_and_options(worker) -> None:
    now = datetime.now(UTC)
    assert guide.add.apply_async((10, 10), expires=60).get(timeout=10) == 20
    assert guide.add.apply_async((10, 10), expires=now + timedelta(days=2)).get(timeout=10) == 20
    assert guide.add.apply_async((2, 2), countdown=0.1, expires=120).get(timeout=10) == 4
    assert guide.add.apply_async((2, 2), eta=now + timedelta(seconds=0.2)).get(timeout=10) == 4
    assert guide.add.apply_async((2, 2), queue="priority.high").get(timeout=10) == 4
    policy = {"max_retries": 3, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
    assert guide.add.apply_async((2, 2), retry=True, retry_policy=policy).get(timeout=10) == 4
    assert guide.add.apply_async((2, 2), ignore_result=True).get(timeout=10) is None
