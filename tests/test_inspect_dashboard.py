"""Inspect and control through the dashboard: the JSON API and the /workers page in a real Chromium."""

from __future__ import annotations

import os
import signal

import redis

from config.settings import Settings
from tests.conftest import Processes, live_workers, wait_for
from tests.prereqs import require_module
from tests.tasks_web import PASSWORD, WEB, Dashboard, start_dashboard

sync_api = require_module("playwright.sync_api", "run make browser (or make install-test, then make browser)")


def _napping(dash: Dashboard, seconds: float) -> str:
    answer = dash.post("/api/tasks/tests.tasks_web.nap", json={"args": [seconds]})
    assert answer.status_code == 202, answer.text
    job_id = str(answer.json()["id"])
    wait_for(lambda: dash.job(job_id)["state"] == "STARTED", 20, what="the nap to start")
    return job_id


def test_the_api_answers_inspect_and_control_like_the_cli(
    settings: Settings, procs: Processes, conn: redis.Redis
) -> None:
    procs.worker("web", name="api-a", env=WEB)
    wait_for(lambda: "api-a" in live_workers(conn), 20, what="the first worker")
    dash = start_dashboard(procs)
    napping = _napping(dash, 30)  # on api-a, the only worker yet
    silent = procs.worker("web", name="api-b", env=WEB)
    wait_for(lambda: "api-b" in live_workers(conn), 20, what="the second worker")
    os.kill(silent.pid, signal.SIGSTOP)
    try:
        answer = dash.get("/api/inspect/active?timeout=0.5")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["not_answering"] == ["api-b"] and body["errors"] == {}, body
        assert [job["id"] for job in body["answers"]["api-a"]] == [napping]
    finally:
        os.kill(silent.pid, signal.SIGCONT)
    assert dash.get("/api/inspect/ping?worker=api-b").json()["answers"] == {"api-b": "pong"}
    assert dash.get("/api/inspect/nope").status_code == 404
    assert "no live worker named 'zz'" in dash.get("/api/inspect/ping?worker=zz").json()["error"]
    assert "timeout must be a number" in dash.get("/api/inspect/ping?timeout=x").json()["error"]

    limit = dash.post("/api/control/rate_limit", json={"task": "tests.tasks_web.add", "rate": "3/m"})
    assert limit.status_code == 200 and set(limit.json()["answers"]) == {"api-a", "api-b"}, limit.text
    stats = dash.get("/api/inspect/stats").json()["answers"]
    assert all(s["rate_limits"] == {"tests.tasks_web.add": "3/60s"} for s in stats.values())
    bad = dash.post("/api/control/rate_limit", json={"task": "tests.tasks_web.add", "rate": "often"})
    assert bad.status_code == 400 and "rate limit 'often' is not like" in bad.json()["error"]

    revoked = dash.post("/api/control/revoke", json={"ids": [napping], "terminate": True})
    assert revoked.json() == {"outcomes": {napping: "stopping"}}, revoked.text
    wait_for(lambda: dash.job(napping)["state"] == "REVOKED", 10, what="the nap to stop")
    assert dash.post("/api/control/revoke", json={"ids": []}).status_code == 400

    down = dash.post("/api/control/shutdown", json={"worker": "api-b"})
    assert down.json()["answers"] == {"api-b": {"command": "shutdown"}}, down.text
    assert silent.wait(timeout=20) == 0


def test_the_workers_page_shows_each_worker_and_its_running_job(
    settings: Settings, procs: Processes, conn: redis.Redis, page: sync_api.Page
) -> None:
    procs.worker("web", name="page-a", env=WEB)
    wait_for(lambda: "page-a" in live_workers(conn), 20, what="the worker")
    dash = start_dashboard(procs)
    napping = _napping(dash, 30)
    page.goto(dash.url + "/login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(dash.url + "/")
    page.click("nav >> text=Workers")
    page.wait_for_selector("article[data-worker=page-a] table.active")
    row = page.inner_text("article[data-worker=page-a] table.active tr:nth-child(2)")
    assert napping in row and "tests.tasks_web.nap" in row and "[30]" in row
    assert "queues web" in page.inner_text("article[data-worker=page-a]")
