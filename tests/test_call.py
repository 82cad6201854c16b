"""``taskrail call``: enqueue a registered task from the shell, run as a real subprocess against the real server."""

from __future__ import annotations

import subprocess

import pytest
import redis

from config.settings import Settings
from tasks.core.protocol import decode_data
from tasks.core.result import AsyncResult
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.tasks_web import WEB


def call(env: dict[str, str], *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "taskrail"), "call", *args], env={**env, **WEB, **(extra or {})}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def job_id(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[0]


def test_call_enqueues_with_json_or_string_arguments_and_prints_the_id(
    env: dict[str, str], conn: redis.Redis, settings: Settings
) -> None:
    done = call(env, "tests.tasks_web.echo", "hello", "--kwargs", '{"times": 2}')
    first = job_id(done)
    assert done.stdout.strip() == f"{first} enqueued on queue 'web'"
    assert decode_data(conn.hget(f"rq:job:{first}", "data")) == ("tests.tasks_web.echo", ["hello"], {"times": 2})
    assert conn.lrange("rq:queue:web", 0, -1) == [first.encode()]

    second = job_id(call(env, "tests.tasks_web.add", "2", "3", "--queue", "elsewhere"))
    assert decode_data(conn.hget(f"rq:job:{second}", "data"))[1] == [2, 3]  # JSON when it parses
    assert conn.lrange("rq:queue:elsewhere", 0, -1) == [second.encode()]

    later = job_id(call(env, "tests.tasks_web.echo", '"42"', "--countdown", "600"))
    assert decode_data(conn.hget(f"rq:job:{later}", "data"))[1] == ["42"]
    assert AsyncResult(later).state == "SCHEDULED"


def test_call_wait_prints_the_state_and_result(
    env: dict[str, str], conn: redis.Redis, procs: Processes, settings: Settings
) -> None:
    procs.worker("web", env=WEB)
    wait_for(lambda: live_workers(conn), 20, what="worker heartbeat")
    done = call(env, "tests.tasks_web.echo", "ab", "--kwargs", '{"times": 3}', "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1] == 'SUCCESS "ababab"'

    failed = call(env, "tests.tasks_web.fail", "it broke", "--wait")
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[1] == "FAILURE RuntimeError: it broke"


def test_call_wait_without_a_worker_gives_up_and_says_why(env: dict[str, str], conn: redis.Redis) -> None:
    done = call(env, "tests.tasks_web.add", "1", "2", "--wait", "--timeout", "1")
    assert done.returncode == 1
    assert "PENDING after 1 s; is a worker running on its queue?" in done.stdout


@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["tests.tasks_web.ad", "1"], {}, "no registered task 'tests.tasks_web.ad'; did you mean 'tests.tasks_web.add'?"),
        (["tests.tasks_web.add", "1"], {}, "tests.tasks_web.add(a: 'int', b: 'int') -> 'int': missing a required argument: 'b'"),
        (["tests.tasks_web.echo", "x", "--kwargs", "{times: 2}"], {}, "--kwargs must be a JSON object like"),
        (["tests.tasks_web.echo", "x", "--kwargs", "[2]"], {}, "--kwargs must be a JSON object like '{\"text\": \"hi\"}', got a list"),
        (["tests.tasks_web.echo", "x", "--kwargs", '{"tiems": 2}'], {}, "got an unexpected keyword argument 'tiems'"),
        (["tests.tasks_web.echo", "x", "--queue", "no spaces"], {}, "queue name 'no spaces' must be"),
        (["tests.tasks_web.echo", "x", "--countdown", "-5"], {}, "countdown must be seconds >= 0"),
        (["tests.tasks_web.echo", "x" * 500], {"TASKRAIL_MAX_PAYLOAD_BYTES": "256"}, "over the 256-byte limit"),
        (["tests.tasks_web.echo", "x", "--countdown", "soon"], {}, "argument --countdown: invalid float value: 'soon'"),
    ],
    ids=["unknown-task", "missing-argument", "kwargs-not-json", "kwargs-not-object", "unknown-keyword", "bad-queue",
         "negative-countdown", "payload-too-large", "countdown-not-a-number"],
)  # fmt: skip
def test_call_refuses_bad_input_clearly_and_writes_nothing(
    env: dict[str, str], conn: redis.Redis, args: list[str], extra: dict[str, str], message: str
) -> None:
    done = call(env, *args, extra=extra)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert done.stdout == ""
    assert conn.keys("*") == [], "nothing is written"
