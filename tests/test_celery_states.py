"""Celery's custom states through a real worker: ``update_state(state, meta)``, ``AsyncResult.state`` and
``.info`` (the meta while running, the return value after success, the exception after failure)."""

from __future__ import annotations

import pytest
import redis

from tasks import AsyncResult, NotSerializable
from tests import tasks_celery
from tests.conftest import Processes, live_workers, wait_for
from tests.test_celery_errors import CELERY


def test_custom_state_and_info_while_running_then_success(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("celery", env=CELERY)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    result = tasks_celery.download.delay(10, "gate:1")
    wait_for(lambda: result.state == "PROGRESS", 15, what="the PROGRESS state")
    assert result.info == {"current": 1, "total": 10} and result.result == result.info
    assert not result.ready()
    conn.rpush("gate:1", 1)
    assert result.get(timeout=10) == {"current": 10, "total": 10}
    assert result.state == "SUCCESS" and result.info == {"current": 10, "total": 10}


def test_info_of_a_failure_is_the_exception(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("celery", env=CELERY)
    result = tasks_celery.lookup_key.delay("nope")
    wait_for(lambda: result.state == "FAILURE", 20, what="the failure")
    assert isinstance(result.info, KeyError) and result.info.args == ("nope",)


def test_pending_info_is_none(settings) -> None:
    assert tasks_celery.download.apply_async((1, "never")).info is None


@pytest.mark.parametrize(
    ("state", "meta", "error", "text"),
    [
        ("", {}, ValueError, "state must be a name"),
        ("SUCCESS", {}, ValueError, "return a value or raise instead"),
        ("PROGRESS", {"x": object()}, NotSerializable, "meta is not JSON"),
    ],
)
def test_bad_states_and_meta_are_refused(state: str, meta: object, error: type, text: str) -> None:
    from tasks.core.context import TaskContext

    with pytest.raises(error, match=text):
        TaskContext.inline(tasks_celery.download).update_state(state=state, meta=meta)


def test_celery_fields_of_async_result(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("celery", name="fields-worker", env=CELERY)
    result = tasks_celery.add.delay(3, y=4)
    assert result.date_done is None
    assert result.get(timeout=15) == 7
    assert result.name == tasks_celery.add.name and result.args == [3] and result.kwargs == {"y": 4}
    assert result.worker == "fields-worker" and result.date_done is not None and result.children == []
    running = tasks_celery.download.delay(1, "never-pushed")
    wait_for(lambda: running.state == "PROGRESS", 15, what="the task to start")
    assert running.revoke(terminate=True, signal="SIGKILL") == "stopping"
    wait_for(lambda: running.state == "REVOKED", 15, what="the revoke")
    assert AsyncResult("no-such-job").name is None and AsyncResult("no-such-job").args is None
