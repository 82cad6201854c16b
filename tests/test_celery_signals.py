"""Celery's task signals through a real worker, and eager mode (no server, no worker)."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
import redis

from tasks import TaskFailed, TaskRevoked, signals
from tasks.core.eager import EagerResult, always_eager
from tests import tasks_celery
from tests.conftest import Processes, wait_for
from tests.test_celery_errors import start_worker

SIGNALS = {"TASKRAIL_IMPORTS": "tests.tasks_celery,tests.tasks_celery_signals"}


@pytest.fixture
def worker(settings, procs: Processes) -> subprocess.Popen[bytes]:
    return start_worker(procs, settings.redis_url, SIGNALS)


def _signals(conn: redis.Redis, prefix: str = "") -> list:
    return [s for s in (json.loads(v) for v in conn.lrange("signals", 0, -1)) if s[0].startswith(prefix)]


def test_task_signals_fire_around_each_job(worker, conn: redis.Redis) -> None:
    ok = tasks_celery.add.delay(2, 2)
    assert ok.get(timeout=10) == 4
    bad = tasks_celery.lookup_key.delay("q")
    with pytest.raises(KeyError):
        bad.get(timeout=10)
    wait_for(lambda: len(_signals(conn, "task_")) >= 6, 10, what="the signals")
    seen = _signals(conn, "task_")
    assert seen[:3] == [
        ["task_prerun", ok.id, "tests.tasks_celery.add", [2, 2]],
        ["task_success", "tests.tasks_celery.add", 4],
        ["task_postrun", ok.id, "SUCCESS", 4],
    ]
    assert seen[3:6] == [
        ["task_prerun", bad.id, "tests.tasks_celery.lookup_key", ["q"]],
        ["task_failure", bad.id, "KeyError", True],
        ["task_postrun", bad.id, "FAILURE", "KeyError"],
    ]


def test_worker_signals(settings, procs: Processes, conn: redis.Redis) -> None:
    proc = procs.worker("celery", name="sig-worker", env=SIGNALS)
    wait_for(lambda: ["worker_ready", "sig-worker"] in _signals(conn), 15, what="worker_ready")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    assert ["worker_shutdown", "sig-worker"] in _signals(conn)


def test_publish_signals_in_the_producer(settings) -> None:
    seen: list = []

    def before(sender, body, routing_key, headers, **_):  # type: ignore[no-untyped-def]
        seen.append(("before", sender, body[0], routing_key, headers["id"]))

    def after(sender, **_):  # type: ignore[no-untyped-def]
        seen.append(("after", sender))

    signals.before_task_publish.connect(before)
    signals.after_task_publish.connect(after)
    try:
        result = tasks_celery.add.delay(1, 2)
    finally:
        signals.before_task_publish.disconnect(before)
        signals.after_task_publish.disconnect(after)
    name = tasks_celery.add.name
    assert seen == [("before", name, (1, 2), "celery", result.id), ("after", name)]


def test_an_expired_job_sends_task_revoked(worker, conn: redis.Redis) -> None:
    with pytest.raises(TaskRevoked):
        tasks_celery.add.apply_async((1, 1), countdown=0.5, expires=0.1).get(timeout=10)
    assert ["task_revoked", True] in _signals(conn)


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TASKRAIL_ALWAYS_EAGER", "1")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens: eager must not connect
    always_eager.cache_clear()
    yield
    always_eager.cache_clear()


def test_eager_mode_runs_inline_without_a_server(eager) -> None:
    result = tasks_celery.add.delay(2, 3)
    assert isinstance(result, EagerResult) and result.get() == 5 and result.state == "SUCCESS"
    failed = tasks_celery.lookup_key.delay("nope")
    assert failed.state == "FAILURE" and isinstance(failed.info, KeyError)
    with pytest.raises(KeyError):
        failed.get()


def test_eager_retries_and_request(eager) -> None:
    fields = tasks_celery.request_fields.apply_async(task_id="e-1").get()
    assert fields["is_eager"] is True and fields["id"] == "e-1"
    assert tasks_celery.counts_retries.delay("e-ok", 3).get() == 3  # two retries, run at once
    with pytest.raises(tasks_celery.Flaky, match="attempt 3"):
        tasks_celery.counts_retries.delay("e-bad", 9).get()  # max_retries=2, then the retry's exc


def test_eager_mode_fires_the_task_signals_as_celerys_apply_does(eager) -> None:
    seen: list = []
    names = ("task_prerun", "task_postrun", "task_success", "task_failure", "task_retry", "before_task_publish")

    def recorder(name: str):  # type: ignore[no-untyped-def]
        return lambda sender, **kw: seen.append((name, kw))

    receivers = {name: recorder(name) for name in names}
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    try:
        ok = tasks_celery.add.delay(2, 3)
        bad = tasks_celery.lookup_key.delay("nope")
        retried = tasks_celery.counts_retries.delay("e-sig", 2)
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    shown = [(name, kw.get("task_id"), kw.get("state")) for name, kw in seen]
    assert shown[:3] == [("task_prerun", ok.id, None), ("task_success", None, None), ("task_postrun", ok.id, "SUCCESS")]
    assert seen[1][1]["result"] == 5 and seen[2][1]["retval"] == 5 and seen[0][1]["args"] == [2, 3]
    assert shown[3:6] == [("task_prerun", bad.id, None), ("task_failure", bad.id, None),
                          ("task_postrun", bad.id, "FAILURE")]  # fmt: skip
    assert isinstance(seen[4][1]["exception"], KeyError) and "KeyError" in seen[4][1]["traceback"]
    # One retry, then success: each attempt has its prerun and postrun, the retry its task_retry.
    assert retried.get() == 2
    assert shown[6:] == [("task_prerun", retried.id, None), ("task_retry", None, None),
                         ("task_postrun", retried.id, "RETRY"), ("task_prerun", retried.id, None),
                         ("task_success", None, None), ("task_postrun", retried.id, "SUCCESS")]  # fmt: skip
    assert not [name for name, _ in seen if name == "before_task_publish"]  # nothing is published


def test_apply_runs_inline_even_without_eager_mode() -> None:
    result = tasks_celery.add.apply((1, 2))
    assert result.get() == 3 and result.successful()
    failed = tasks_celery.lookup_key.apply(("x",))
    assert isinstance(failed.result, KeyError) and not isinstance(failed.result, TaskFailed)


def test_the_worker_knows_when_no_task_signal_has_a_receiver() -> None:
    def receiver(sender, **_):  # type: ignore[no-untyped-def]
        pass

    before = signals.connected()
    signals.task_success.connect(receiver)
    assert signals.connected()
    signals.task_success.disconnect(receiver)
    assert signals.connected() is before
