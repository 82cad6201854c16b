"""One check for queue name, priority and countdown: the unit, then every path that takes them writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from config.errors import ConfigError, Retry
from config.scaling import load_scaling
from config.settings import Settings
from scripts.cli import main
from tasks import DeadLetters, chain, chord, group, pause, signature, task
from tasks.core import validate
from tasks.core.canvas import Signature
from tasks.core.context import TaskContext
from tasks.core.options import parse_rate_limit
from tests import tasks_canvas, tasks_core
from workers.dashboard import AuthConfig, create_app
from workers.exitcodes import RET_CONFIG
from workers.periodic import load_periodic

BAD_QUEUES = [
    ("a b", "it holds ' '"),
    ("", "it is empty"),
    ("x" * 101, "it is 101 characters long"),
    ("rq:queue:x", "it holds ':'"),
    (7, "it is int, not a string"),
]
RULE = "must be 1-100 letters, digits, '_', '.' or '-'"


@pytest.mark.parametrize(("value", "why"), BAD_QUEUES)
def test_queue_name_says_what_is_wrong_and_what_is_right(value: Any, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate.queue_name(value, "here")
    assert str(info.value) == f"here: queue name {value!r} {RULE}; it is not a queue name because {why}"
    assert not validate.is_queue_name(value)


def test_good_values_pass_through() -> None:
    assert validate.queue_name("email.high-1_x") == "email.high-1_x"
    assert [validate.priority(p) for p in (None, 0, 9)] == [None, 0, 9]
    assert [validate.countdown(c) for c in (None, 0, 2.5)] == [0, 0, 2.5]
    assert validate.run_at(None, None, 100.0) == 0.0 and validate.run_at(5, None, 100.0) == 105.0
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert validate.run_at(None, moment, now) == moment.timestamp()
    assert validate.run_at(None, moment.replace(tzinfo=None), now) == moment.timestamp()  # naive means UTC
    assert validate.run_at(None, datetime(2000, 1, 1), 2e9) == 0.0  # in the past: now


@pytest.mark.parametrize("value", [-1, 10, 2.0, True, "1"])
def test_priority_is_an_integer_0_to_9(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"^t: priority must be an integer 0 to 9 \(lower runs sooner\), got "):
        validate.priority(value, "t")


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), 1e308, validate.MAX_DELAY_S + 1, True, "5"])
def test_countdown_is_finite_seconds_from_0_to_10_years(value: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"^t: countdown must be seconds >= 0 and at most 315360000 \(10 years\), got "
    ):
        validate.countdown(value, "t")
    assert validate.countdown(validate.MAX_DELAY_S) == validate.MAX_DELAY_S


def test_eta_at_most_10_years_ahead() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    for far in (datetime(2041, 1, 1), datetime.max.replace(tzinfo=UTC)):
        with pytest.raises(ConfigError, match=r"^t: eta must be at most 315360000 seconds \(10 years\) ahead, got "):
            validate.run_at(None, far, now, "t")
    assert validate.run_at(None, datetime(2039, 1, 1), now) == datetime(2039, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("value", ["email\n", "email\r\n", "\nemail", "em\nail"])
def test_queue_name_with_a_newline_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="it holds '\\\\n'"):
        validate.queue_name(value, "here")
    assert not validate.is_queue_name(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1])
def test_self_retry_refuses_a_countdown_that_would_never_come(value: float) -> None:
    context = TaskContext.inline(tasks_core.add)
    with pytest.raises(ConfigError, match=r"^tests.tasks_core.add: self.retry: countdown must be seconds >= 0"):
        context.retry(countdown=value)
    with pytest.raises(Retry):
        context.retry(countdown=5)


def test_eta_is_a_datetime_and_excludes_countdown() -> None:
    with pytest.raises(ConfigError, match="eta must be a datetime, got '2030-01-01'"):
        validate.run_at(None, "2030-01-01", 0.0)
    with pytest.raises(ConfigError, match="give countdown or eta, not both"):
        validate.run_at(1, datetime(2030, 1, 1), 0.0)


# Every path below: a bad value is refused with the validator's message and nothing is written.


def test_task_decorator_refuses_at_decoration() -> None:
    def job() -> None: ...

    with pytest.raises(ConfigError, match=r"^@task on .*job: queue name 'a b' must be"):
        task(queue="a b")(job)
    with pytest.raises(ConfigError, match=r"^@task on .*job: priority must be an integer 0 to 9"):
        task(priority=10)(job)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": "a b"}, "queue name 'a b' must be"),
        ({"priority": 12}, "priority must be an integer 0 to 9"),
        ({"countdown": -1}, "countdown must be seconds >= 0"),
        ({"countdown": float("inf")}, "countdown must be seconds >= 0"),
        ({"countdown": 1e308}, "countdown must be seconds >= 0"),
        ({"eta": "tomorrow"}, "eta must be a datetime"),
        ({"eta": datetime(9999, 1, 1)}, "eta must be at most 315360000 seconds"),
        ({"queue": "email\n"}, "queue name 'email\\\\n' must be"),
    ],
)
def test_apply_async_and_map_refuse(
    settings: Settings, conn: redis.Redis, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^tests.tasks_core.add: {message}"):
        tasks_core.add.apply_async((1, 2), **options)
    with pytest.raises(ConfigError, match=message):
        tasks_core.add.enqueue_many([(1, 2), (3, 4)], **options)
    assert conn.dbsize() == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": "a b"}, "queue name 'a b' must be"),
        ({"priority": 12}, "priority must be an integer 0 to 9"),
        ({"countdown": -1}, "countdown must be seconds >= 0"),
    ],
)
def test_canvas_signatures_refuse(settings: Settings, conn: redis.Redis, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^tests.tasks_canvas.add: {message}"):
        tasks_canvas.add.s(1, 2).set(**options)
    with pytest.raises(ConfigError, match=message):
        signature("tests.tasks_canvas.add", (1, 2), **options)
    # A signature whose options were never checked (built directly) is still refused when the flow is built.
    unchecked = Signature(tasks_canvas.add, (1,), {}, options)
    flows = [
        Signature(tasks_canvas.add, (1, 2), {}, options),
        chain(tasks_canvas.add.s(1, 2), unchecked),
        group(tasks_canvas.add.s(1, 2), Signature(tasks_canvas.add, (1, 2), {}, options)),
        chord([tasks_canvas.add.s(1, 2)], Signature(tasks_canvas.ident, (), {}, options)),
    ]
    for flow in flows:
        with pytest.raises(ConfigError, match=message):
            flow.apply_async()
    assert conn.dbsize() == 0


@pytest.fixture
def api(settings: Settings) -> Any:
    """The dashboard app in this process, called with a bearer token."""
    app = create_app(settings.replace(imports=("tests.tasks_web",)), AuthConfig(token="t"))
    client = app.test_client()

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return client.open(path, method=method, headers={"Authorization": "Bearer t"}, **kwargs)

    return call


def test_http_api_refuses_with_400(api: Any, conn: redis.Redis) -> None:
    before = conn.dbsize()
    add = "/api/tasks/tests.tasks_web.add"
    cases = [
        ("POST", add, {"args": [1, 2], "options": {"queue": "a b"}}, "queue name 'a b' must be"),
        ("POST", add, {"args": [1, 2], "options": {"queue": 7}}, "queue name 7 must be"),
        ("POST", add, {"args": [1, 2], "options": {"priority": -1}}, "priority must be an integer 0 to 9"),
        ("POST", add, {"args": [1, 2], "options": {"countdown": "soon"}}, "countdown must be seconds >= 0"),
        ("POST", add, {"args": [1, 2], "options": {"queue": "email\n"}}, "queue name 'email\\n' must be"),
        *[
            ("POST", add, {"args": [1, 2], "options": {"countdown": c}}, "countdown must be seconds >= 0 and at most")
            for c in (float("nan"), float("inf"), 1e308)
        ],
        ("POST", "/api/queues/a%20b/pause", None, "queue name 'a b' must be"),
        ("POST", "/api/queues/a%20b/resume", None, "queue name 'a b' must be"),
        ("GET", "/api/failed?queue=a%20b", None, "queue name 'a b' must be"),
    ]
    for method, path, body, message in cases:
        answer = api(method, path, json=body) if body is not None else api(method, path)
        assert answer.status_code == 400, (path, body, answer.text)
        assert message in answer.get_json()["error"], (path, body, answer.text)
    assert conn.dbsize() == before and not conn.keys("rq:job:*")


@pytest.mark.parametrize(
    "argv",
    [["pause", "email", "a b"], ["resume", "email", "a b"], ["failed", "a b"], ["failed", "purge", "a b"],
     ["failed", "requeue", "--all", "--queue", "a b"], ["events", "email", "a b"]],
)  # fmt: skip
def test_cli_refuses_before_changing_anything(
    settings: Settings, conn: redis.Redis, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == RET_CONFIG
    assert "queue name 'a b' must be" in capsys.readouterr().err
    assert conn.dbsize() == 0  # "email", named first, was not paused either


def test_python_queue_controls_and_dead_letters_refuse(settings: Settings, conn: redis.Redis) -> None:
    for call in (lambda: pause("a b"), lambda: DeadLetters().purge("a*"), lambda: DeadLetters().count("a b")):
        with pytest.raises(ConfigError, match="not a queue name"):
            call()
    assert conn.dbsize() == 0


def test_periodic_file_refuses(tmp_path: Path) -> None:
    path = tmp_path / "periodic.yaml"
    path.write_text("periodic:\n  nightly:\n    task: tests.tasks_core.add\n    every_s: 60\n    queue: 'a b'\n")
    with pytest.raises(ConfigError, match=r"periodic 'nightly': queue name 'a b' must be"):
        load_periodic(path)


def test_every_name_pattern_refuses_a_trailing_newline(tmp_path: Path, api: Any) -> None:
    periodic = tmp_path / "periodic.yaml"
    periodic.write_text('periodic:\n  "nightly\\n":\n    task: tests.tasks_core.add\n    every_s: 60\n')
    with pytest.raises(ConfigError, match="the name must be letters"):
        load_periodic(periodic)
    scaling = tmp_path / "scaling.yaml"
    scaling.write_text('queues: ["email\\n"]\nprofiles:\n  p:\n    queues:\n      email: {workers: 1}\n')
    with pytest.raises(ConfigError, match=r"queues: 'email\\n' is not a queue name"):
        load_scaling(scaling)
    with pytest.raises(ConfigError, match="is not like '10/s'"):
        parse_rate_limit("10/s\nx")
    assert api("GET", "/api/jobs/abc%0A").status_code == 404
