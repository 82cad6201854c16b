"""The @task API without workers: options, validation, enqueue writes (real server, no worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tasks import AsyncResult, ConfigError, NotSerializable, PayloadTooLarge, TaskOptions, parse_rate_limit, task
from tasks.core.registry import lookup
from tests import tasks_core


def test_default_name_is_module_and_function() -> None:
    assert tasks_core.add.name == "tests.tasks_core.add"
    assert lookup("tests.tasks_core.add") is tasks_core.add


def test_calling_the_task_runs_it_inline() -> None:
    assert tasks_core.add(2, 3) == 5
    assert tasks_core.stepper(2, 0) == 2  # bound tasks get an inline context


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": "bad queue"}, "queue"),
        ({"priority": 10}, "priority must be an integer 0 to 9"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_backoff": "x"}, "retry_backoff"),
        ({"time_limit": 0}, "time_limit"),
        ({"time_limit": float("inf")}, "time_limit must be a positive number of seconds, at most 315360000"),
        ({"time_limit": float("nan")}, "time_limit must be a positive number of seconds"),
        ({"retry_backoff": float("nan")}, "retry_backoff must be a number of seconds >= 0 and at most"),
        ({"retry_backoff_max": float("inf")}, "retry_backoff_max must be a number of seconds >= 0 and at most"),
        ({"rate_limit": "1" + "0" * 400 + "/s"}, "rate limit"),
        ({"rate_limit": "ten per second"}, "rate limit"),
        ({"autoretry_for": ("ValueError",)}, "autoretry_for"),
        ({"bind": "yes"}, "bind"),
        ({"retries": 3}, "unknown option 'retries'"),
    ],
)
def test_bad_options_fail_at_decoration(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):

        @task(**options)
        def f() -> None: ...


def test_rate_limit_syntax() -> None:
    assert parse_rate_limit("10/s").count == 10 and parse_rate_limit("10/s").period_s == 1
    assert parse_rate_limit("100/m").period_s == 60
    assert parse_rate_limit("5/10s").period_s == 10


def test_backoff_doubles_and_caps() -> None:
    opts = TaskOptions(name="x", retry_backoff=1, retry_backoff_max=5, retry_jitter=False)
    assert [opts.backoff_s(n, 0.0) for n in range(5)] == [1, 2, 4, 5, 5]
    jittered = TaskOptions(name="x", retry_backoff=4, retry_jitter=True)
    assert 2 <= jittered.backoff_s(0, 0.0) <= jittered.backoff_s(0, 0.99) <= 4


def test_delay_writes_an_rq_job(settings, conn: redis.Redis) -> None:
    result = tasks_core.add.delay(1, 2)
    job = conn.hgetall(f"rq:job:{result.id}")
    assert job[b"status"] == b"queued" and job[b"origin"] == b"core"
    assert json.loads(job[b"data"]) == ["tests.tasks_core.add", None, [1, 2], {}]
    assert conn.lrange("rq:queue:core", 0, -1) == [result.id.encode()]
    assert result.state == "PENDING"


def test_rq_reads_taskrail_jobs(settings, conn: redis.Redis) -> None:
    from rq.job import Job
    from rq.serializers import JSONSerializer

    result = tasks_core.add.delay(4, 5)
    job = Job.fetch(result.id, connection=conn, serializer=JSONSerializer)
    assert job.func_name == "tests.tasks_core.add" and job.args == [4, 5] and job.origin == "core"


def test_countdown_and_eta_schedule(settings, conn: redis.Redis) -> None:
    later = tasks_core.add.apply_async((1, 1), countdown=60)
    assert later.state == "SCHEDULED"
    assert conn.zscore("rq:scheduled:core", later.id) is not None
    eta = tasks_core.add.apply_async((1, 1), eta=datetime.now(UTC) + timedelta(minutes=5))
    assert eta.state == "SCHEDULED"


def test_map_enqueues_in_order(settings, conn: redis.Redis) -> None:
    results = tasks_core.add.enqueue_many([(i, i) for i in range(2500)])
    assert [r.id.encode() for r in results] == conn.lrange("rq:queue:core", 0, -1)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: tasks_core.add.delay(object(), 1), NotSerializable),
        (lambda: tasks_core.add.delay(float("nan"), 1), NotSerializable),
        (lambda: tasks_core.add.delay("x" * (600 * 1024), 1), PayloadTooLarge),
        (lambda: tasks_core.add.delay(1), ConfigError),
        (lambda: tasks_core.add.delay(1, 2, 3), ConfigError),
        (lambda: tasks_core.add.apply_async((1, 2), countdown=-1), ConfigError),
        (lambda: tasks_core.add.apply_async((1, 2), priority=12), ConfigError),
        (lambda: tasks_core.add.apply_async((1, 2), colour="red"), ConfigError),
        (lambda: tasks_core.add.apply_async((1, 2), queue="<img src=x>"), ConfigError),
    ],
)
def test_bad_calls_raise_and_write_nothing(settings, conn: redis.Redis, call, error) -> None:
    with pytest.raises(error):
        call()
    assert conn.dbsize() == 0


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_arguments_nested_deeper_than_100_levels_are_refused(settings, conn: redis.Redis) -> None:
    loop: list = []
    loop.append(loop)
    calls = [
        lambda: tasks_core.add.delay(nested(101), 1),
        lambda: tasks_core.add.apply_async((1,), {"b": {"k": nested(100)}}),
        lambda: tasks_core.add.delay(nested(5000), 1),
        lambda: tasks_core.add.enqueue_many([(1, 2), (nested(101), 2)]),
    ]
    for call in calls:
        with pytest.raises(NotSerializable, match="are nested more than 100 levels deep"):
            call()
    with pytest.raises(NotSerializable, match="Circular reference"):
        tasks_core.add.delay(loop, 1)
    assert conn.dbsize() == 0
    tasks_core.add.delay(nested(100), 1)  # at the limit
    assert conn.dbsize() > 0


def test_bad_map_writes_nothing(settings, conn: redis.Redis) -> None:
    with pytest.raises(NotSerializable):
        tasks_core.add.enqueue_many([(1, 2)] * 1500 + [(object(), 2)])
    assert conn.dbsize() == 0


def test_unknown_job_is_pending(settings) -> None:
    assert AsyncResult("no-such-job").state == "PENDING"


def test_revoke_cancels_a_queued_job(settings, conn: redis.Redis) -> None:
    result = tasks_core.add.delay(1, 2)
    assert result.revoke() == "canceled"
    assert result.state == "REVOKED"
    assert conn.llen("rq:queue:core") == 0
    assert conn.zscore("rq:canceled:core", result.id) is not None
    assert result.revoke() == "already canceled"
    assert AsyncResult("no-such-job").revoke() == "missing"


def test_a_task_defined_in_main_is_refused_at_enqueue(settings, conn) -> None:
    script = "from tasks import task\n@task\ndef f(x: int) -> int:\n    return x\nprint(f(2))\nf.delay(1)\n"
    done = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 1 and done.stdout == "2\n"  # inline calls still work
    assert done.stderr.strip().splitlines()[-1] == (
        "config.errors.EnqueueError: task __main__.f is defined in __main__ (the script being run, or a REPL), which "
        "no worker can import: move it into a module of a package (e.g. myapp/tasks.py) and list that module in the "
        "workers' TASKRAIL_IMPORTS"
    )
    assert conn.dbsize() == 0  # nothing written
