"""A real headless Chromium, driven by Playwright (the ``page`` fixture in conftest), uses the dashboard while a real
worker runs jobs."""

from __future__ import annotations

import redis

from config.settings import Settings
from tests.conftest import ROOT, Processes, live_workers, wait_for
from tests.prereqs import require_module
from tests.tasks_web import LONG_NAME, PASSWORD, WEB, Dashboard, start_dashboard

sync_api = require_module("playwright.sync_api", "run make browser (or make install-test, then make browser)")

SHOTS = ROOT / "test-output"
SCRIPT = "<script>alert('x')</script><img src=x onerror=alert(1)>"


def watch(page: sync_api.Page) -> dict[str, list[str]]:
    """Collect dialogs (an alert means injected script ran) and console errors (CSP violations among them)."""
    seen: dict[str, list[str]] = {"dialogs": [], "errors": []}

    def on_dialog(dialog: sync_api.Dialog) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: seen["errors"].append(f"{msg.text} {msg.location}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    return seen


def enqueue(dash: Dashboard, task: str, *args: object) -> str:
    answer = dash.post(f"/api/tasks/tests.tasks_web.{task}", json={"args": list(args)})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def test_browser_logs_in_sees_live_charts_and_opens_a_job_in_rq_dashboard(
    settings: Settings, procs: Processes, conn: redis.Redis, page: sync_api.Page
) -> None:
    procs.worker("web", env=WEB)
    wait_for(lambda: live_workers(conn), 20, what="worker heartbeat")
    dash = start_dashboard(procs)
    for i in range(12):
        enqueue(dash, "add", i, i)
    tricky = enqueue(dash, "echo", SCRIPT)
    keyed = enqueue(dash, "keyed", SCRIPT)  # markup as a key of the result
    failed = enqueue(dash, "fail", SCRIPT)
    for _ in range(6):
        enqueue(dash, "nap", 0.3)
    answer = dash.post(f"/api/tasks/{LONG_NAME}", json={"args": []})
    assert answer.status_code == 202, answer.text
    wait_for(lambda: dash.job(failed)["state"] == "FAILURE", 30, what="the failing job")
    seen = watch(page)
    SHOTS.mkdir(exist_ok=True)

    page.goto(dash.url + "/")  # not logged in: the login form
    assert "/login" in page.url
    page.screenshot(path=str(SHOTS / "dashboard-login.png"))
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(dash.url + "/")
    page.wait_for_function(
        "() => { const svg = document.querySelector('#chart-completed svg');"
        " return svg && Number(svg.dataset.total) > 0 && svg.querySelector('path.series'); }"
    )
    page.wait_for_selector("#queues tbody tr[data-queue=web]")
    page.wait_for_selector(f"#chart-durations .bar-label[title='{LONG_NAME}']")
    page.wait_for_selector("#chart-durations .bar-track .bar")
    page.wait_for_selector("#failures tbody td.args")
    page.wait_for_function("() => Number(document.querySelector('#chart-depth svg')?.dataset.points) >= 2")
    row = page.inner_text("#queues tbody tr[data-queue=web]")
    assert row.startswith("web"), row
    assert SCRIPT in page.inner_text("#failures tbody"), "the failed job's argument shows as text"
    path = page.get_attribute("#chart-completed path.series", "d") or ""
    assert path.startswith("M") and "L" in path
    page.screenshot(path=str(SHOTS / "dashboard-overview.png"), full_page=True)
    # The longest task name is shown whole in the duration chart, nothing cut off.
    label = page.locator(f"#chart-durations .bar-label[title='{LONG_NAME}']")
    assert label.inner_text() == LONG_NAME
    assert label.evaluate("(el) => el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().left >= 0")
    # At a phone's width every name is still readable: whole, or elided in the middle with the whole on hover.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.documentElement.clientWidth === 390")
    # Read every label in one pass of the page's script: the live chart redraws between separate reads.
    labels = page.eval_on_selector_all(
        "#chart-durations .bar-label",
        """(els) => els.map((el) => ({
        name: el.title, text: el.innerText, size: parseFloat(getComputedStyle(el).fontSize),
        fits: el.scrollWidth <= el.clientWidth && el.getBoundingClientRect().right <= 390}))""",
    )
    assert labels
    for shown in labels:
        name, head, tail = shown["name"], *shown["text"].partition("…")[::2]
        assert shown["text"] == name or (name.startswith(head) and name.endswith(tail) and len(head) > 8), shown
        assert shown["fits"] and shown["size"] >= 12, shown
    page.screenshot(path=str(SHOTS / "dashboard-overview-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})

    # The Pause button posts to the API with the page's CSRF token; the table then shows the queue paused.
    page.click("#queues tbody tr[data-queue=web] button")
    page.wait_for_selector("#queues tbody tr[data-queue=web] .tag")
    assert conn.sismember("taskrail:paused", "web")
    page.click("#queues tbody tr[data-queue=web] button")
    wait_for(lambda: not conn.sismember("taskrail:paused", "web"), 15, what="the queue to resume")

    # Our job page shows the argument as text.
    page.goto(f"{dash.url}/jobs/{tricky}")
    assert SCRIPT in page.inner_text("pre.args")
    page.screenshot(path=str(SHOTS / "dashboard-job.png"), full_page=True)

    # Into rq-dashboard from the queue table: the failed registry, then the job.
    page.goto(dash.url + "/")
    page.click("#queues tbody tr[data-queue=web] td.bad a")
    page.wait_for_selector(f"tr[data-job-id='{failed}']")
    assert SCRIPT in page.inner_text(f"tr[data-job-id='{failed}'] .description")
    page.click(f"tr[data-job-id='{failed}'] .job_id a")
    page.wait_for_selector(".description-scroll")
    assert page.inner_text(".description-scroll") == f"tests.tasks_web.fail({SCRIPT!r})"
    assert "RuntimeError" in page.inner_text("pre.exc_info")
    page.screenshot(path=str(SHOTS / "dashboard-rq-job.png"), full_page=True)

    # Its Requeue button posts with the CSRF token the page was given; the worker runs the job again.
    page.click("#requeue-job-btn")
    wait_for(lambda: dash.job(failed)["attempts"] == 2, 30, what="the requeued job to run")
    page.goto(f"{dash.url}/rq/0/view/job/{tricky}")
    page.wait_for_selector(".description-scroll")
    assert SCRIPT in page.inner_text(".description-scroll")
    # Its job page inserts JSON.stringify(result) raw: a key with markup must show as text too.
    wait_for(lambda: dash.job(keyed)["state"] == "SUCCESS", 30, what="the keyed job")
    page.goto(f"{dash.url}/rq/0/view/job/{keyed}")
    page.wait_for_selector(".description-scroll")
    assert f'"{SCRIPT}": "value"' in page.inner_text("#job-data")
    assert page.locator("#job-data img").count() == 0
    assert seen["dialogs"] == [], "script from job data ran"
    assert seen["errors"] == []
