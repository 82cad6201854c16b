"""Celery-style canvas calls beyond the guide's snippets: per-call ``link``/``link_error`` on flows, bad
``chunks``/``starmap`` input refused before anything is written, and the enqueue cost of a 10,000-child chord
and of a 10,000-item ``chunks(..., 100)`` in round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.client import Pipeline

from tasks import AsyncResult, ConfigError, TaskFailed, chain, chord, default_client, group
from tasks.core import keys
from tests import tasks_canvas as t
from tests.conftest import wait_for
from tests.test_canvas import worker  # noqa: F401 (the fixture: a worker on queue canvas)


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], Any]], int]]:
    """Counts the round trips a call makes: each pipeline sent, each command sent alone (connecting not counted)."""
    trips: list[str] = []
    execute, command = Pipeline.execute, redis.Redis.execute_command

    def pipeline_execute(self: Pipeline, raise_on_error: bool = True) -> Any:
        trips.append("pipeline")
        return execute(self, raise_on_error)

    def execute_command(self: redis.Redis, *args: Any, **options: Any) -> Any:
        trips.append(str(args[0]))
        return command(self, *args, **options)

    monkeypatch.setattr(Pipeline, "execute", pipeline_execute)
    monkeypatch.setattr(redis.Redis, "execute_command", execute_command)

    def count(call: Callable[[], Any]) -> int:
        trips.clear()
        call()
        return len(trips)

    yield count


def records(conn: redis.Redis, key: str, count: int) -> list[str]:
    wait_for(lambda: conn.llen(key) >= count, 15, what=f"{count} entries in {key}")
    return [v.decode() for v in conn.lrange(key, 0, -1)]


@pytest.mark.usefixtures("worker")
def test_link_on_a_chain_follows_its_last_step(conn: redis.Redis) -> None:
    flow = t.add.s(1, 1) | t.mul.s(3)
    res = flow.apply_async(link=t.record.s("after-chain"))
    assert res.get(timeout=10) == 6
    assert records(conn, "after-chain", 1) == ["6"]
    assert res.children[0].get(timeout=10) == 6 and res.parent.children == []
    assert not flow.steps[-1].options  # the caller's chain kept no callback
    flow.link(t.record.s("linked-later"))
    flow()
    assert records(conn, "linked-later", 1) == ["6"]


@pytest.mark.usefixtures("worker")
def test_link_error_on_a_group_runs_for_each_failed_member(conn: redis.Redis) -> None:
    res = group(t.fail_if.s(i, 1) for i in range(3)).apply_async(link_error=t.record.s("errors"))
    assert [type(v).__name__ for v in res.get(timeout=10, propagate=False)] == ["int", "ValueError", "int"]
    assert records(conn, "errors", 1) == [repr(res.ids[1])]


@pytest.mark.usefixtures("worker")
def test_a_chord_body_after_a_failed_member_reports_once_through_the_chain_errback(conn) -> None:
    flow = chain(t.ident.s(1), chord([t.fail_if.s(1), t.fail_if.s(2)], t.total.s()), t.ident.s())
    res = flow.on_error(t.record.s("chain-errors"))()
    with pytest.raises(TaskFailed):
        res.get(timeout=10)
    assert len(records(conn, "chain-errors", 1)) == 1
    assert t.ident.delay(0).get(timeout=10) == 0  # one worker, in order: every errback sent so far has run
    assert conn.llen("chain-errors") == 1


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: t.add.chunks([(1, 2)], 0), "chunk size must be a whole number"),
        (lambda: t.add.chunks([(1, 2), (1, 2, 3)], 1), "too many positional arguments"),
        (lambda: t.add.starmap([(1,)]), "missing a required argument"),
        (lambda: t.add.map([(1, 2)]), r"a tuple of arguments per call\? use starmap, or enqueue_many"),
        (lambda: group(t.add.s(1, 1)).apply_async(job_id="x"), "job_id names one job"),
    ],
)
def test_bad_map_and_chunks_are_refused_before_anything_is_written(settings, conn, build, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build()()
    assert conn.dbsize() == 0


def test_ten_thousand_child_chord_is_written_in_one_round_trip_even_after_a_script_flush(settings, round_trips) -> None:
    flow = chord([t.square.s(i) for i in range(10_000)], t.total.s())
    conn = redis.Redis.from_url(settings.redis_url)
    conn.script_flush()  # as after a server restart: the script must be sent again
    default_client().redis.ping()  # the process's client is made (and checked) on first use
    assert round_trips(flow.apply_async) == 1
    assert round_trips(flow.apply_async) == 1
    assert conn.llen(keys.QUEUE.format("canvas")) == 20_000 and conn.zcard(keys.DEFERRED.format("canvas")) == 2


@pytest.mark.usefixtures("worker")
def test_ten_thousand_item_chunks_by_100_is_one_round_trip_and_one_list_per_chunk(round_trips) -> None:
    pairs = [(i, i) for i in range(10_000)]
    default_client().redis.ping()  # the process's client is made (and checked) on first use
    handles: list[Any] = []
    assert round_trips(lambda: handles.append(t.add.chunks(pairs, 100)())) == 1
    res = handles[0]
    assert len(res) == 100
    values = res.get(timeout=60)
    assert values[0] == [2 * i for i in range(100)] and values[99][-1] == 2 * 9_999
    assert [len(chunk) for chunk in values] == [100] * 100
    assert AsyncResult(res.ids[0]).children == []
