"""Celery's per-call options and calls by name, through a real worker: ``expires``, ``link``,
``link_error``, ``headers``, ``ignore_result``, ``time_limit``, ``task_id``, ``shadow``, ``retry_policy``,
``send_task`` and ``signature("name")``."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from scripts.chaos import Proxy
from tasks import Client, ConfigError, TaskRevoked, TaskTimeout, send_task, signature
from tasks.core.byname import by_name
from tests import tasks_celery
from tests.conftest import wait_for
from tests.test_celery_errors import records


def test_an_expired_job_is_not_run_and_ends_revoked(celery_worker) -> None:
    past = tasks_celery.add.apply_async((1, 2), expires=datetime.now(UTC) - timedelta(seconds=1))
    later = tasks_celery.add.apply_async((1, 2), countdown=1, expires=0.2)  # due after it expires
    for result in (past, later):
        with pytest.raises(TaskRevoked):
            result.get(timeout=10)
        assert result.state == "REVOKED"
    assert tasks_celery.add.apply_async((1, 2), expires=60).get(timeout=10) == 3


def test_link_calls_back_with_the_result(celery_worker, conn: redis.Redis) -> None:
    tasks_celery.add.apply_async((2, 3), link=tasks_celery.record.s("linked"))
    tasks_celery.add.apply_async((2, 3), link=[tasks_celery.record.si(["fixed"], "linked-si")])
    wait_for(lambda: conn.llen("linked") and conn.llen("linked-si"), 10, what="the link callbacks")
    assert records(conn, "linked") == [5] and records(conn, "linked-si") == [["fixed"]]


def test_link_error_calls_errbacks_celery_4_style_and_old_style(celery_worker, conn: redis.Redis) -> None:
    result = tasks_celery.lookup_key.apply_async(
        ("zz",), link_error=[tasks_celery.on_error.s("errors"), tasks_celery.old_errback.s("old")]
    )
    wait_for(lambda: conn.llen("errors") and conn.llen("old"), 10, what="the errbacks")
    assert records(conn, "errors") == [[result.id, "KeyError", "'zz'", True]]
    assert records(conn, "old") == [result.id]


def test_headers_reach_the_request(celery_worker) -> None:
    fields = tasks_celery.request_fields.apply_async(headers={"trace": "t-1"}).get(timeout=10)
    assert fields["headers"] == {"trace": "t-1"}


def test_ignore_result_task_id_and_shadow(celery_worker, conn: redis.Redis) -> None:
    result = tasks_celery.add.apply_async((1, 1), task_id="my-id", ignore_result=True, shadow="add-shadowed")
    assert result.id == "my-id"
    assert result.get(timeout=10) is None and result.state == "SUCCESS"
    stats = conn.keys("taskrail:taskstats:*")
    assert b"taskrail:taskstats:add-shadowed" in stats and b"taskrail:taskstats:tests.tasks_celery.add" not in stats


def test_per_call_time_limit_is_hard(celery_worker) -> None:
    with pytest.raises(TaskTimeout):
        tasks_celery.soft_sleeper.apply_async(("hard",), time_limit=1, soft_time_limit=5).get(timeout=15)


def test_send_task_and_signature_by_name_without_importing(celery_worker) -> None:
    assert send_task("tests.tasks_celery.add", args=(4, 5), queue="celery").get(timeout=10) == 9
    sig = signature("tests.tasks_celery.add", args=(1,), queue="celery")
    assert sig.delay(10).get(timeout=10) == 11


def test_send_task_of_an_unknown_name_fails_on_the_worker(celery_worker) -> None:
    result = send_task("nobody.registered.this", queue="celery")
    with pytest.raises(Exception, match="not registered on this worker"):
        result.get(timeout=10)


def test_a_stand_in_cannot_run_inline(settings) -> None:
    with pytest.raises(ConfigError, match="not registered here"):
        by_name("not.here.at_all")()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expire": 3}, "did you mean 'expires'"),
        ({"link": "not a signature"}, "link takes signatures"),
        ({"headers": ["x"]}, "headers must be a dict"),
        ({"retry_policy": {"max_retry": 1}}, "retry_policy takes"),
        ({"expires": -1}, "countdown must be seconds"),
    ],
)
def test_bad_call_options_name_the_fix(settings, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tasks_celery.add.apply_async((1, 2), **options)


class _Refuser:
    """A real TCP server that accepts each connection and closes it at once: a Redis that is down."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


def _attempts(settings, **options) -> int:  # type: ignore[no-untyped-def]
    refuser = _Refuser()
    # redis-py's own retries (counted in ``accepted``) without its back-off sleeps, which made this test take 16 s
    connection = redis.Redis(port=refuser.port, socket_timeout=2, retry=Retry(NoBackoff(), 3))
    client = Client(settings, connection=connection)
    with pytest.raises(redis.ConnectionError):
        tasks_celery.add.apply_async((1, 2), client=client, **options)
    refuser.sock.close()
    return refuser.accepted


def test_retry_policy_retries_the_enqueue_while_the_server_is_down(settings) -> None:
    once = _attempts(settings)
    policy = {"max_retries": 2, "interval_start": 0, "interval_step": 0.01, "interval_max": 0.01}
    assert once >= 1 and _attempts(settings, retry=True, retry_policy=policy) == 3 * once


def _lost_reply(settings, server, call):  # type: ignore[no-untyped-def]
    """Run ``call(client)`` with the reply of its first write lost (the server ran it; the network lost the answer);
    returns the result and the ids queued on ``celery``."""
    with Proxy(0, ("127.0.0.1", server.port)) as proxy:
        client = Client(settings, connection=redis.Redis(port=proxy.port, socket_timeout=2))
        tasks_celery.add.apply_async((0, 0), client=client)  # scripts loaded: the next reply is the write's
        tasks_celery.add.enqueue_many([(0, 0)], client=client)
        proxy.drop_next(1)
        result = call(client)
        assert proxy.dropped == 1
    conn = redis.Redis.from_url(settings.redis_url)
    return result, [i.decode() for i in conn.lrange("rq:queue:celery", 0, -1)]


def test_an_enqueue_sent_again_after_a_lost_reply_is_queued_once(settings, server) -> None:
    policy = {"max_retries": 3, "interval_start": 0, "interval_step": 0.01, "interval_max": 0.01}
    for options in ({}, {"retry_policy": policy}):
        result, queued = _lost_reply(
            settings, server, lambda c, o=options: tasks_celery.add.apply_async((1, 2), client=c, **o)
        )
        assert queued.count(result.id) == 1, (options, queued)


def test_a_map_sent_again_after_a_lost_reply_is_queued_once(settings, server) -> None:
    results, queued = _lost_reply(
        settings, server, lambda c: tasks_celery.add.enqueue_many([(i, i) for i in range(50)], client=c)
    )
    assert all(queued.count(r.id) == 1 for r in results), queued
