"""The dashboard's JSON API against a real ``taskrail dashboard`` process, a real worker and a real server."""

from __future__ import annotations

import re
import time
import zlib

import pytest
import redis

from config.settings import Settings
from tests.conftest import Processes, live_workers, wait_for
from tests.lua.helpers import run_order
from tests.tasks_web import WEB, Dashboard, start_dashboard
from workers.dashboard import AuthConfig, create_app
from workers.dashboard.openapi import document

ADD = "/api/tasks/tests.tasks_web.add"


@pytest.fixture
def dash(settings: Settings, procs: Processes) -> Dashboard:
    return start_dashboard(procs)


@pytest.fixture
def worker(settings: Settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("web", env=WEB)
    wait_for(lambda: live_workers(conn), 20, what="worker heartbeat")


def job_when(dash: Dashboard, job_id: str, *states: str) -> dict:
    """Poll the job until it reaches one of ``states``; returns its JSON."""

    def reached() -> dict | None:
        info = dash.job(job_id)
        return info if info["state"] in states else None

    return wait_for(reached, 30, interval=0.05, what=f"job {job_id} to be {states}")  # type: ignore[return-value]


def test_enqueue_answers_202_and_the_job_runs(dash: Dashboard, worker: None) -> None:
    answer = dash.post(ADD, json={"args": [2], "kwargs": {"b": 3}})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["task"] == "tests.tasks_web.add" and body["queue"] == "web"
    assert body["status_url"] == f"/api/jobs/{body['id']}" and answer.headers["Location"] == body["status_url"]
    info = job_when(dash, body["id"], "SUCCESS")
    assert info["result"] == 5 and info["error"] is None
    assert info["attempts"] == 1 and info["args"] == [2] and info["kwargs"] == {"b": 3}
    assert info["task"] == "tests.tasks_web.add" and info["queue"] == "web" and info["status"] == "finished"
    assert all(info[t] for t in ("created_at", "enqueued_at", "started_at", "ended_at"))


BAD_REQUESTS = [
    ("/api/tasks/tests.tasks_web.nope", {"args": []}, 404, "no registered task 'tests.tasks_web.nope'"),
    (ADD, "not json", 400, "the body must be a JSON object"),
    (ADD, [1, 2], 400, "the body must be a JSON object"),
    (ADD, {"args": [1, 2], "extra": 1}, 400, "unknown body key 'extra'"),
    (ADD, {"args": {"a": 1}}, 400, "'args' must be a JSON array"),
    (ADD, {"args": [1, 2], "kwargs": [3]}, 400, "'kwargs' must be a JSON object"),
    (ADD, {"args": [1, 2], "options": {"retries": 3}}, 400, "unknown option 'retries'"),
    (ADD, {"args": [1, 2], "options": {"eta": "2030-01-01"}}, 400, "unknown option 'eta'"),
    (ADD, {"args": [1, 2], "options": {"priority": 12}}, 400, "priority must be an integer 0 to 9"),
    (ADD, {"args": [1, 2], "options": {"countdown": -1}}, 400, "countdown must be seconds >= 0"),
    (ADD, {"args": [1, 2], "options": {"queue": "bad queue!"}}, 400, "queue name 'bad queue!' must be"),
    (ADD, {"args": [1, 2], "options": {"unique_key": 7}}, 400, "option 'unique_key' must be a string"),
    (ADD, {"args": [1]}, 400, "missing a required argument: 'b'"),
    (ADD, {"args": [1, 2, 3]}, 400, "too many positional arguments"),
    (ADD, {"args": [1, 2], "kwargs": {"c": 1}}, 400, "unexpected keyword argument 'c'"),
    ("/api/tasks/tests.tasks_web.echo", {"args": ["x", 2]}, 400, "too many positional arguments"),
]


def test_enqueue_errors_say_what_is_wrong_and_write_nothing(dash: Dashboard, conn: redis.Redis) -> None:
    before = conn.dbsize()
    for path, body, status, message in BAD_REQUESTS:
        if isinstance(body, str):
            answer = dash.post(path, data=body, headers={"Content-Type": "application/json"})
        else:
            answer = dash.post(path, json=body)
        assert (answer.status_code, message in answer.json()["error"]) == (status, True), (body, answer.text)
    assert conn.dbsize() == before and not conn.keys("rq:job:*")


def test_enqueue_options_queue_priority_countdown_unique(dash: Dashboard, conn: redis.Redis) -> None:
    other = dash.post(ADD, json={"args": [1, 1], "options": {"queue": "web-other", "priority": 0}}).json()
    assert other["queue"] == "web-other"
    assert run_order(conn, "web-other") == [other["id"]]
    later = dash.post(ADD, json={"args": [1, 2], "options": {"countdown": 600}}).json()
    assert dash.job(later["id"])["state"] == "SCHEDULED"
    first = dash.post(ADD, json={"args": [1, 3], "options": {"unique_key": "k"}}).json()
    again = dash.post(ADD, json={"args": [1, 3], "options": {"unique_key": "k"}}).json()
    assert first["id"] == again["id"]
    tasks = dash.get("/api/tasks").json()["tasks"]
    assert {
        "name": "tests.tasks_web.add",
        "queue": "web",
        "signature": "tests.tasks_web.add(a: int, b: int) -> int",
    } in tasks


def test_unknown_job_is_404(dash: Dashboard) -> None:
    for path in ("/api/jobs/nope", "/api/jobs/x<y"):
        assert dash.get(path).status_code == 404
    assert dash.post("/api/jobs/nope/revoke").status_code == 404
    assert dash.post("/api/jobs/nope/requeue").status_code == 404


def test_failed_job_shows_its_error_and_can_be_requeued(dash: Dashboard, worker: None) -> None:
    job_id = dash.post("/api/tasks/tests.tasks_web.fail", json={"args": ["out of paper"]}).json()["id"]
    info = job_when(dash, job_id, "FAILURE")
    assert info["error"]["type"] == "RuntimeError" and info["error"]["message"] == "out of paper"
    assert "raise RuntimeError(message)" in info["error"]["traceback"] and info["result"] is None
    failed = dash.get("/api/failed?queue=web").json()["jobs"]
    assert [(j["id"], j["args"], j["exc_type"]) for j in failed] == [(job_id, ["out of paper"], "RuntimeError")]
    assert dash.get("/api/failed?limit=0").status_code == 400
    answer = dash.post(f"/api/jobs/{job_id}/requeue")
    assert answer.status_code == 200 and answer.json()["outcome"] == "requeued"
    wait_for(lambda: dash.job(job_id)["attempts"] == 2, 30, what="the requeued job to run again")
    job_when(dash, job_id, "FAILURE")
    done = dash.post(ADD, json={"args": [1, 1]}).json()["id"]
    job_when(dash, done, "SUCCESS")
    refused = dash.post(f"/api/jobs/{done}/requeue")
    assert refused.status_code == 409 and "is finished, not failed" in refused.json()["error"]


def test_revoke_a_waiting_job(dash: Dashboard) -> None:
    job_id = dash.post(ADD, json={"args": [1, 1]}).json()["id"]
    answer = dash.post(f"/api/jobs/{job_id}/revoke")
    assert answer.status_code == 200 and answer.json() == {"id": job_id, "outcome": "canceled"}
    assert dash.job(job_id)["state"] == "REVOKED"
    again = dash.post(f"/api/jobs/{job_id}/revoke")
    assert again.status_code == 409 and "already canceled" in again.json()["error"]


def queue(dash: Dashboard, name: str) -> dict:
    found = [q for q in dash.get("/api/queues").json()["queues"] if q["name"] == name]
    assert found, f"no queue {name}"
    return found[0]


def test_queues_show_counts_workers_age_pause_and_rates(dash: Dashboard, worker: None) -> None:
    assert dash.post("/api/queues/web/pause").json() == {"queue": "web", "paused": True}
    ids = [dash.post(ADD, json={"args": [i, i]}).json()["id"] for i in range(3)]
    dash.post(ADD, json={"args": [0, 0], "options": {"countdown": 600}})
    web = wait_for(lambda: (q := queue(dash, "web"))["oldest_age_s"] and q, 10, what="an oldest age")
    assert web["paused"] and web["counts"]["waiting"] == 3 and web["counts"]["scheduled"] == 1
    assert web["workers"] == 1 and web["workers_busy"] == 0 and web["oldest_age_s"] > 0
    assert dash.post("/api/queues/web/resume").json() == {"queue": "web", "paused": False}
    for job_id in ids:
        job_when(dash, job_id, "SUCCESS")
    web = queue(dash, "web")
    assert not web["paused"] and web["counts"]["waiting"] == 0 and web["counts"]["finished"] == 3
    assert web["completed_last_minute"] >= 3 and web["failed_last_minute"] == 0 and web["oldest_age_s"] is None
    stats = dash.get("/api/stats").json()
    assert sum(stats["rates"]["queues"]["web"]["completed"]) == 3 and len(stats["rates"]["minutes"]) == 30
    add = [d for d in stats["durations"] if d["task"] == "tests.tasks_web.add"]
    assert add and 0 < add[0]["p50_s"] <= add[0]["p95_s"]
    assert stats["workers"] == {"busy": 0, "total": 1}


def test_pause_refuses_a_bad_queue_name(dash: Dashboard, conn: redis.Redis) -> None:
    answer = dash.post("/api/queues/no%20spaces/pause")
    assert answer.status_code == 400 and "must be 1-100 letters" in answer.json()["error"]
    assert not conn.smembers("taskrail:paused")


def test_metrics_are_served(dash: Dashboard, worker: None) -> None:
    job_when(dash, dash.post(ADD, json={"args": [1, 2]}).json()["id"], "SUCCESS")
    answer = dash.get("/metrics")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert "taskrail_" in answer.text and "tests.tasks_web.add" in answer.text


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_openapi_document_matches_the_routes(dash: Dashboard, settings: Settings) -> None:
    app = create_app(settings.replace(imports=("tests.tasks_web",)), AuthConfig(token="unused"))
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            routes.setdefault(_openapi_path(rule.rule), set()).update(
                m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}
            )
    documented = {path: set(ops) for path, ops in document()["paths"].items()}
    assert routes == documented
    for path, ops in document()["paths"].items():
        for op in ops.values():
            named = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert named == set(re.findall(r"{(\w+)}", path)), path
    assert dash.get("/api/openapi.json").json() == document()


@pytest.fixture
def app_client(settings: Settings):  # type: ignore[no-untyped-def]
    """The API in this process, called with a bearer token."""
    client = create_app(settings.replace(imports=("tests.tasks_web",)), AuthConfig(token="t")).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer t"
    return client


@pytest.mark.parametrize("depth", [101, 900, 5000])
def test_deeply_nested_arguments_answer_400_and_write_nothing(app_client, conn: redis.Redis, depth: int) -> None:  # type: ignore[no-untyped-def]
    before = conn.dbsize()
    body = '{"args": [' + "[" * depth + "]" * depth + ", 1]}"
    answer = app_client.post(ADD, data=body, content_type="application/json")
    assert answer.status_code == 400, answer.text
    assert "nested" in answer.get_json()["error"] and "100 levels" in answer.get_json()["error"]
    assert conn.dbsize() == before
    assert app_client.post(ADD, json={"args": [[[1]], 1]}).status_code == 202  # a little nesting is fine


def test_failed_listing_survives_an_over_deep_or_damaged_job(app_client, conn: redis.Redis) -> None:  # type: ignore[no-untyped-def]
    deep = '["tests.tasks_web.add",null,[' + "[" * 900 + "]" * 900 + "],{}]"
    bomb = zlib.compress(b'["tests.tasks_web.add",null,["' + b"x" * (8 * 1024 * 1024) + b'"],{}]')
    for job_id, data in (("deep", deep.encode()), ("bomb", bomb), ("garbage", b"\x00not zlib")):
        conn.hset(f"rq:job:{job_id}", mapping={"data": data, "origin": "web", "tr_task": "tests.tasks_web.add",
                                               "tr_exc_type": "RecursionError", "ended_at": "2026-01-01T00:00:00Z"})  # fmt: skip
        conn.zadd("rq:failed:web", {job_id: time.time() + 3600})
    answer = app_client.get("/api/failed?queue=web")
    assert answer.status_code == 200, answer.text
    jobs = {job["id"]: job for job in answer.get_json()["jobs"]}
    assert set(jobs) == {"deep", "bomb", "garbage"}
    assert jobs["deep"]["data_error"] == "cannot decode: job data is nested more than 102 levels deep"
    assert jobs["bomb"]["data_error"].startswith("cannot decode: compressed job data inflates to more than")
    assert jobs["garbage"]["data_error"].startswith("cannot decode: ")
    assert all(job["args"] == [] and job["task"] == "tests.tasks_web.add" for job in jobs.values())
    assert app_client.get("/api/failed").status_code == 200
    assert app_client.get("/api/jobs/deep").status_code == 200
