"""task_routes: Celery's name/glob -> queue, validated, applied by every enqueue path, the call's queue= winning."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from config import ConfigError, load_settings
from config.routes import parse_routes, route
from config.settings import Settings
from tasks import chain, group, send_task
from tasks.core.client import Client, default_client
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.tasks_routes import ROUTES, double, pinned, square
from tests.tasks_web import start_dashboard

IMPORTS = {"TASKRAIL_IMPORTS": "tests.tasks_routes", "TASKRAIL_TASK_ROUTES": ROUTES}


def test_exact_name_beats_a_glob_and_globs_go_in_the_order_written() -> None:
    routes = parse_routes({"a.*": "first", "a.b.*": "second", "a.b.c": "exact"})
    assert route(routes, "a.b.c") == "exact"
    assert route(routes, "a.b.d") == "first"  # the first pattern that matches, as Celery's MapRoute
    assert route(routes, "b.a.x") is None  # a pattern matches from the start of the name
    assert route(parse_routes([{"x.*": {"queue": "one"}}, {"x.y": "two"}]), "x.y") == "one"  # routers in order


def test_routes_come_from_yaml_or_the_environment_as_json_or_pairs(tmp_path: Path) -> None:
    config = tmp_path / "taskrail.yaml"
    config.write_text("task_routes:\n  tasks.emails.*: email\n  tasks.reports.generate_report: {queue: reports}\n")
    from_yaml = load_settings({"TASKRAIL_CONFIG": str(config)})
    assert route(from_yaml.task_routes, "tasks.emails.send_email") == "email"
    assert route(from_yaml.task_routes, "tasks.reports.generate_report") == "reports"
    pairs = load_settings({"TASKRAIL_TASK_ROUTES": "tasks.emails.*=email, tasks.fanout.*=bulk"})
    assert route(pairs.task_routes, "tasks.fanout.fan") == "bulk"
    as_json = load_settings({"TASKRAIL_TASK_ROUTES": '[{"t.*": "q"}]'})
    assert route(as_json.task_routes, "t.x") == "q"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"tasks.*": "bad queue"}', "route 'tasks.*': queue 'bad queue' is not a queue name"),
        ('{"tasks.*": {"queue": "q", "exchange": "x"}}', "only 'queue' is supported, not 'exchange'"),
        ("tasks.*", "'tasks.*' is not pattern=queue; write e.g. 'tasks.emails.*=email'"),
        ("{nope", "invalid JSON"),
        ("[5]", "expected a mapping of task names or globs to queues"),
    ],
)
def test_bad_routes_are_refused_naming_the_problem_and_fix(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match="TASKRAIL_TASK_ROUTES") as caught:
        load_settings({"TASKRAIL_TASK_ROUTES": raw})
    assert message in str(caught.value)


def test_a_settings_file_route_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "taskrail.yaml"
    config.write_text("task_routes: email\n")
    with pytest.raises(ConfigError, match="'email' is not pattern=queue"):
        load_settings({"TASKRAIL_CONFIG": str(config)})
    config.write_text("task_routes: 5\n")
    with pytest.raises(ConfigError, match=r"task_routes in the settings file.*expected a mapping or a list"):
        load_settings({"TASKRAIL_CONFIG": str(config)})


def _queued(conn: redis.Redis, queue: str) -> list[str]:
    return [j.decode() for j in conn.lrange(f"rq:queue:{queue}", 0, -1)]


def test_every_enqueue_path_uses_the_routes_and_an_explicit_queue_wins(
    settings: Settings, conn: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKRAIL_TASK_ROUTES", ROUTES)
    default_client.cache_clear()
    client = Client(settings.replace(task_routes=parse_routes(ROUTES)))
    assert double.apply_async((1,), client=client).id in _queued(conn, "exact")
    assert square.delay(2).id in _queued(conn, "globbed")  # the default client reads TASKRAIL_TASK_ROUTES
    assert square.apply_async((3,), queue="mine").id in _queued(conn, "mine")  # the call's queue= wins
    assert pinned.delay(4).id in _queued(conn, "pinned")  # as in Celery, the queue @task names beats the routes
    assert send_task("tests.tasks_routes.square", (5,)).id in _queued(conn, "globbed")
    assert send_task("elsewhere.task", (5,)).id in _queued(conn, "default")  # no route matches
    chain(double.s(1), square.s()).delay()
    assert len(_queued(conn, "exact")) == 2  # the chain's first step; the next waits until released
    group(square.s(i) for i in range(3)).delay()
    assert len(_queued(conn, "globbed")) == 5


def test_routed_jobs_run_on_the_routed_queue_from_the_api_and_the_cli(
    settings: Settings, procs: Processes, conn: redis.Redis, env: dict[str, str]
) -> None:
    procs.worker("globbed", "exact", env=IMPORTS)
    wait_for(lambda: live_workers(conn), 20, what="worker heartbeat")
    dash = start_dashboard(procs, env=IMPORTS)
    answer = dash.post("/api/tasks/tests.tasks_routes.square", json={"args": [7]})
    assert answer.status_code == 202 and answer.json()["queue"] == "globbed", answer.text
    job = wait_for(lambda: (info := dash.job(answer.json()["id"]))["state"] == "SUCCESS" and info, 30)
    assert job["result"] == 49 and job["queue"] == "globbed"  # type: ignore[index]
    call = subprocess.run(
        [str(BIN / "taskrail"), "call", "tests.tasks_routes.double", "21", "--wait", "--timeout", "30"],
        env={**env, **IMPORTS}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert call.returncode == 0, call.stderr
    assert "enqueued on queue 'exact'" in call.stdout and "SUCCESS 42" in call.stdout
