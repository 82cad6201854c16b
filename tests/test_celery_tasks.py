"""Celery's task options, ``base=`` classes and hooks, soft time limits, retries, ``Ignore``/``Reject`` and
``self.request``, through real workers (and, for decoration-time checks, no worker)."""

from __future__ import annotations

import pytest
import redis

from tasks import (
    ConfigError,
    MaxRetriesExceededError,
    Reject,
    SoftTimeLimitExceeded,
    TaskFailed,
    TaskRevoked,
    task,
)
from tests import tasks_celery
from tests.test_celery_errors import records


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"acks_lat": True}, "did you mean 'acks_late'"),
        ({"soft_timelimit": 3}, "did you mean 'soft_time_limit'"),
        ({"retries": 3}, "did you mean 'max_retries'"),
        ({"serializer": "pickle"}, "taskrail stores JSON only"),
        ({"backend": "db+sqlite://"}, "leave backend out"),
        ({"acks_late": "yes"}, "acks_late='yes' is not supported"),
        ({"soft_time_limit": -1}, "soft_time_limit must be a positive number"),
        ({"retry_kwargs": {"max_retries": 2, "delay": 1}}, "retry_kwargs takes a dict of max_retries and countdown"),
        ({"base": object}, "base must be a subclass of tasks.Task"),
    ],
)
def test_bad_celery_options_name_the_fix(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):

        @task(**options)
        def f() -> None: ...


def test_every_listed_celery_option_is_accepted() -> None:
    @task(acks_late=True, acks_on_failure_or_timeout=True, reject_on_worker_lost=True, track_started=True,
          store_errors_even_if_ignored=True, send_events=True, trail=True, resultrepr_maxsize=1024, shared=True,
          lazy=True, abstract=False, exchange="x", routing_key="r", serializer="json", compression=None, backend=None,
          soft_time_limit=5, default_retry_delay=10, expires=60, typing=False, throws=(KeyError,),
          dont_autoretry_for=(TypeError,), max_retries=None)  # fmt: skip
    def everything(a: int) -> None: ...

    assert everything.options.max_retries is None and everything.options.extra["acks_late"] is True
    everything.check_arguments((1, 2, 3), {"x": 1})  # typing=False: no argument check


def test_task_signature_is_celerys_method() -> None:
    sig = tasks_celery.add.signature((2, 2), countdown=1)
    assert sig.args == (2, 2) and sig.options == {"countdown": 1} and tasks_celery.add.subtask is not None


def test_base_class_hooks_run_in_the_worker(celery_worker, conn: redis.Redis) -> None:
    assert tasks_celery.hooked.delay("ok", False).get(timeout=10) == "the-db:ok"
    result = tasks_celery.hooked.delay("bad", True)
    with pytest.raises(ValueError, match="asked to fail"):
        result.get(timeout=10)
    ok = records(conn, "hooks:ok")
    assert [r[0] for r in ok] == ["before_start", "on_success", "after_return"]
    assert ok[1] == ["on_success", "the-db:ok"] and ok[2] == ["after_return", "SUCCESS"]
    assert records(conn, "hooks:bad")[1:] == [["on_failure", "ValueError", True], ["after_return", "FAILURE"]]


def test_on_retry_hook_and_self_retry_exc(celery_worker, conn: redis.Redis) -> None:
    assert tasks_celery.hooked_retry.delay("r").get(timeout=10) == 1
    assert ["on_retry", "Flaky"] in records(conn, "hooks:r") and ["after_return", "RETRY"] in records(conn, "hooks:r")


def test_options_as_base_class_attributes(celery_worker, conn: redis.Redis) -> None:
    with pytest.raises(tasks_celery.Flaky):
        tasks_celery.class_options.delay("attempts").get(timeout=10)
    assert conn.llen("attempts") == 3  # the first try and max_retries = 2 from the class


def test_djangos_example_options_run(celery_worker, conn: redis.Redis) -> None:
    assert tasks_celery.django_style.delay("dj").get(timeout=10) == 3  # retry_kwargs max_retries=2 allows 3 tries


def test_soft_time_limit_raises_inside_the_task(celery_worker, conn: redis.Redis) -> None:
    result = tasks_celery.soft_sleeper.delay("soft")
    with pytest.raises(SoftTimeLimitExceeded):
        result.get(timeout=10)
    assert conn.lrange("soft", 0, -1) == [b"cleaned up"]


def test_soft_time_limit_of_an_async_task(celery_worker) -> None:
    with pytest.raises(SoftTimeLimitExceeded):
        tasks_celery.async_soft_sleeper.delay().get(timeout=10)


def test_per_call_soft_time_limit(celery_worker, conn: redis.Redis) -> None:
    with pytest.raises(SoftTimeLimitExceeded):
        tasks_celery.soft_sleeper.apply_async(("call",), soft_time_limit=0.3).get(timeout=10)


def test_ignore_ends_without_a_result_and_reject_is_never_retried(celery_worker) -> None:
    ignored = tasks_celery.ignored.delay()
    with pytest.raises(TaskRevoked):
        ignored.get(timeout=10)
    rejected = tasks_celery.rejected.delay()
    with pytest.raises(Reject):
        rejected.get(timeout=10)
    assert rejected.attempts == 1


def test_reject_with_requeue_runs_again(celery_worker) -> None:
    assert tasks_celery.rejects_once.delay("rejects").get(timeout=10) == 2


def test_max_retries_none_retries_forever(celery_worker, conn: redis.Redis) -> None:
    assert tasks_celery.retry_forever.delay("forever", 6).get(timeout=20) == 6  # past the default of 3


def test_after_the_last_retry_get_raises_the_original_exception(celery_worker) -> None:
    with pytest.raises(KeyError, match="gone"):
        tasks_celery.retry_then_raise.delay(True).get(timeout=10)
    with pytest.raises(MaxRetriesExceededError) as info:
        tasks_celery.retry_then_raise.delay(False).get(timeout=10)
    assert isinstance(info.value, TaskFailed)


def test_request_fields(celery_worker) -> None:
    result = tasks_celery.request_fields.apply_async(headers={"tenant": "acme"})
    fields = result.get(timeout=10)
    assert fields["id"] == result.id == fields["root_id"] == fields["correlation_id"]
    assert fields["hostname"] and fields["delivery_info"]["routing_key"] == "celery"
    assert fields["headers"] == {"tenant": "acme"} and fields["name"] == tasks_celery.request_fields.name
    assert fields["called_directly"] is False and fields["is_eager"] is False and fields["retries"] == 0
    assert tasks_celery.request_fields()["called_directly"] is True


def test_get_inside_a_task_raises_runtime_error(celery_worker) -> None:
    with pytest.raises(RuntimeError, match="never call get"):
        tasks_celery.waits_inside.delay().get(timeout=10)


def test_current_task(celery_worker) -> None:
    result = tasks_celery.who_am_i.delay()
    assert result.get(timeout=10) == [True, result.id, tasks_celery.who_am_i.name, []]
    assert not tasks_celery.current_task and tasks_celery.current_task.request is None
