"""delay() one by one: the prepacked command (tasks/core/prepacked.py) on the held connection (tasks/core/wire.py)
writes what the general path writes, fails before writing, and survives NOSCRIPT, dropped connections,
interrupts, threads and forks (real server, no worker)."""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from rq.job import Job
from rq.serializers import JSONSerializer

from config.errors import ConfigError, EnqueueError, NotSerializable, PayloadTooLarge
from tasks import default_client, task
from tasks.core.client import Client
from tasks.core.prepacked import prepacked
from tasks.core.protocol import new_job_id
from tasks.core.wire import line_of
from tests import tasks_core
from tests.conftest import wait_for

Q = "one"


@task(queue=Q)
def plain(a: int, b: str = "x") -> None: ...


@task(queue=Q, priority=2, time_limit=30, result_ttl=60)
def urgent(a: int) -> None: ...


@task(queue=Q, rate_limit="10/s", concurrency_limit=3)
def limited(a: int) -> None: ...


@task(queue=Q, expires=60)
def expiring(a: int) -> None: ...


@task(queue=Q, unique=True)
def once(a: int) -> None: ...


def _jobs(conn: redis.Redis, queue: str = Q) -> list[str]:
    return [v.decode() for v in conn.lrange(f"rq:queue:{queue}", 0, -1)]


def _at(fields: dict[str, str]) -> float:
    """A job's created_at (RQ's format) as a unix time."""
    return datetime.strptime(fields["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _hash(conn: redis.Redis, job_id: str) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in conn.hgetall(f"rq:job:{job_id}").items()}


@pytest.mark.parametrize(("fn", "listed"), [(plain, Q), (urgent, f"{Q}:p2"), (limited, Q)])
def test_a_plain_delay_writes_the_hash_a_call_through_the_general_path_writes(
    settings, conn: redis.Redis, fn: Any, listed: str
) -> None:
    fast = fn.delay(7)
    assert prepacked(fn, default_client()) is default_client().prepacked[fn]  # it went the prepacked way
    general = fn.apply_async((7,), queue=Q)  # an option: the general path, the same job
    assert _jobs(conn, listed) == [fast.id, general.id]
    one, other = _hash(conn, fast.id), _hash(conn, general.id)
    assert one["created_at"] == one["enqueued_at"] and abs(_at(one) - _at(other)) < 5
    assert {k: v for k, v in one.items() if not k.endswith("_at")} == {
        k: v for k, v in other.items() if not k.endswith("_at")
    }
    assert one["description"] == f"{fn.name}(7)" and one["status"] == "queued"


def test_a_prepacked_job_is_an_rq_job(settings, conn: redis.Redis) -> None:
    result = plain.delay(3, b="é€")
    job = Job.fetch(result.id, connection=conn, serializer=JSONSerializer)
    assert job.func_name == plain.name and job.args == [3] and job.kwargs == {"b": "é€"}
    assert job.get_status() == "queued" and job.origin == Q and job.description == f"{plain.name}(3, b='é€')"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: plain.delay(object()), NotSerializable),
        (lambda: plain.delay("a" * 600_000), PayloadTooLarge),
        (lambda: plain.delay(), ConfigError),  # a is missing
        (lambda: plain.delay(1, c=2), ConfigError),
    ],
)
def test_a_bad_call_fails_before_anything_is_written(settings, conn: redis.Redis, call: Any, error: type) -> None:
    plain.delay(1)  # the template is built and the line holds its connection
    conn.flushdb()
    with pytest.raises(error):
        call()
    assert conn.dbsize() == 0


def test_a_task_defined_in_main_is_refused_on_the_prepacked_path(settings, conn: redis.Redis) -> None:
    in_main = task(name="__main__.job", queue=Q)(lambda: None)
    with pytest.raises(EnqueueError, match="__main__"):
        in_main.delay()
    assert conn.dbsize() == 0


def test_after_a_script_flush_delay_writes_its_job_once(settings, conn: redis.Redis) -> None:
    plain.delay(1)
    conn.script_flush()
    second = plain.delay(2)
    assert _jobs(conn)[1:] == [second.id] and _hash(conn, second.id)["data"].endswith("[2],{}]")


def test_a_killed_connection_is_replaced_and_the_call_writes_once(settings, conn: redis.Redis) -> None:
    plain.delay(1)
    held = line_of(default_client().redis)._held
    assert held is not None
    conn.client_kill_filter(_id=_held_id(conn, held))
    second = plain.delay(2)
    assert len(_jobs(conn)) == 2 and _jobs(conn)[1] == second.id


def _held_id(conn: redis.Redis, held: Any) -> str:
    """The server's id of the held connection (by its local port)."""
    port = held._sock.getsockname()[1]
    return next(c["id"] for c in conn.client_list() if c["addr"].endswith(f":{port}"))


def test_an_interrupt_between_send_and_reply_leaves_no_reply_behind(
    settings, conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain.delay(1)
    held = line_of(default_client().redis)._held
    assert held is not None

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.undo()
        raise KeyboardInterrupt

    monkeypatch.setattr(held, "read_response", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plain.delay(2)  # written, its reply never read
    third = plain.delay(3)
    assert third.id == _jobs(conn)[2] and len(_jobs(conn)) == 3  # not the second call's reply, read late


def test_threads_calling_delay_at_once_each_get_their_own_job(settings, conn: redis.Redis) -> None:
    ids: list[str] = []

    def produce(n: int) -> None:
        ids.extend(plain.delay(n).id for _ in range(100))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(set(ids)) == 800 and sorted(_jobs(conn)) == sorted(ids)
    assert all(conn.hexists(f"rq:job:{job_id}", "data") for job_id in ids)


def test_a_forked_child_enqueues_on_its_own_connection(settings, conn: redis.Redis) -> None:
    plain.delay(0)  # the parent's line holds a connection before the fork
    pid = os.fork()
    if pid == 0:  # the child: every reply must be its own call's
        code = 1
        try:
            ok = all(_hash(conn, plain.delay(i, b="child").id)["data"] == f'["{plain.name}",null,[{i}],{{"b":"child"}}]'
                     for i in range(50))  # fmt: skip
            code = 0 if ok else 1
        finally:
            os._exit(code)
    mine = [plain.delay(i, b="parent").id for i in range(50)]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert all(_hash(conn, job_id)["description"].endswith("b='parent')") for job_id in mine)
    assert len(_jobs(conn)) == 101


def test_replaced_options_rebuild_the_template(settings, conn: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    plain.delay(1)
    monkeypatch.setattr(plain, "options", dataclasses.replace(plain.options, priority=1))
    second = plain.delay(2)
    assert [v.decode() for v in conn.lrange(f"rq:queue:{Q}:p1", 0, -1)] == [second.id]


def test_options_computed_per_call_take_the_general_path(settings, conn: redis.Redis) -> None:
    client = default_client()
    assert prepacked(expiring, client) is None and prepacked(once, client) is None
    assert prepacked(plain, client) is not None
    assert "expires" in _hash(conn, expiring.delay(1).id)["tr_flow"]
    assert once.delay(1).id == once.delay(1).id and len(_jobs(conn)) == 2


class _Counting(redis.Redis):
    sent: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_a_client_that_wraps_execute_command_still_sees_each_enqueue(settings, redis_url: str) -> None:
    counting = _Counting.from_url(redis_url)
    counting.sent = []
    result = plain.apply_async((1,), client=Client(settings, counting))
    assert counting.sent == ["EVALSHA"] and counting.exists(f"rq:job:{result.id}")


def test_a_client_decoding_responses_gets_str_ids(settings, redis_url: str) -> None:
    decoding = redis.Redis.from_url(redis_url, decode_responses=True)
    result = tasks_core.add.apply_async((1, 2), client=Client(settings, decoding))
    assert isinstance(result.id, str) and decoding.hget(f"rq:job:{result.id}", "origin") == "core"


def test_job_ids_have_uuid4s_form() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and uuid.UUID(i).hex == i and uuid.UUID(i).version == 4 for i in ids)


def test_calls_waiting_for_the_line_go_out_in_one_write(
    settings, conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain.delay(0)
    line = line_of(default_client().redis)
    held = line._held
    assert held is not None
    writes: list[bytes] = []
    send = held.send_packed_command
    monkeypatch.setattr(held, "send_packed_command", lambda packed, **kw: (writes.append(packed[0]), send(packed))[1])
    monkeypatch.setattr("tasks.core.wire.WAIT_S", 30.0)
    got: dict[int, str] = {}
    threads = [threading.Thread(target=lambda n=n: got.__setitem__(n, plain.delay(n).id)) for n in range(1, 4)]
    with line._lock:  # a caller holds the line: the three wait in it
        for thread in threads:
            thread.start()
        wait_for(lambda: len(line._waiting) == 3, what="three calls waiting for the line")
    for thread in threads:
        thread.join(timeout=30)
    assert len(writes) == 1 and writes[0].count(b"EVALSHA") == 3
    assert {n: _hash(conn, job_id)["description"] for n, job_id in got.items()} == {
        n: f"{plain.name}({n})" for n in range(1, 4)
    }


def test_a_call_the_line_does_not_take_in_time_goes_through_the_pool(settings, conn: redis.Redis) -> None:
    plain.delay(0)
    line = line_of(default_client().redis)
    with line._lock:  # e.g. a signal handler enqueueing while its own thread's call holds the line
        result = plain.delay(1)
        assert _jobs(conn)[-1] == result.id and not line._waiting
