"""The dashboard refuses what it must: no credentials, cross-site posts, markup in job data, open binds."""

from __future__ import annotations

import re
import subprocess

import pytest
import redis
import requests
from markupsafe import escape

from config.settings import Settings
from tests.conftest import BIN, Processes, wait_for
from tests.tasks_web import PASSWORD, TOKEN, WEB, Dashboard, listening_url, start_dashboard
from workers.dashboard import AuthConfig, create_app
from workers.exitcodes import RET_CONFIG

SCRIPT = "<script>alert('x')</script><img src=x onerror=alert(1)>"
PUBLIC = {"auth.login", "auth.login_post", "loginlink.login_once", "public"}
SAMPLES = {
    "instance_number": "0",
    "queue_name": "web",
    "registry_name": "failed",
    "per_page": "8",
    "order": "asc",
    "page": "1",
    "job_id": "abc",
    "name": "tests.tasks_web.add",
    "filename": "style.css",
}


@pytest.fixture
def dash(settings: Settings, procs: Processes) -> Dashboard:
    return start_dashboard(procs)


def every_route(settings: Settings) -> list[tuple[str, str, str]]:
    """(endpoint, method, path) for every rule of the app, with sample values for its parameters."""
    app = create_app(settings.replace(imports=("tests.tasks_web",)), AuthConfig(token="unused"))
    found = []
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: SAMPLES[m.group(1)], rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path))
    return found


def test_without_credentials_every_route_refuses(dash: Dashboard, settings: Settings, conn: redis.Redis) -> None:
    routes = every_route(settings)
    assert len(routes) > 30 and any(e.startswith("rq_dashboard.") for e, _, _ in routes)
    anonymous = requests.Session()
    throttled = 0
    for endpoint, method, path in routes:
        if endpoint in PUBLIC:
            continue
        plain = anonymous.request(method, dash.url + path, timeout=30, allow_redirects=False)
        assert plain.status_code == 401, (endpoint, method, path, plain.status_code)
        assert plain.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = anonymous.request(method, dash.url + path, headers={"Authorization": "Bearer nope"}, timeout=30)
        # Wrong tokens are throttled: after FAILED_LIMIT of them this client waits (tested on its own below).
        assert wrong.status_code in (401, 429), (endpoint, method, path, wrong.status_code)
        throttled += wrong.status_code == 429 and int(wrong.headers["Retry-After"]) > 0
        if method == "GET":  # a browser is sent to the login form, and back afterwards
            page = anonymous.get(dash.url + path, headers={"Accept": "text/html"}, timeout=30, allow_redirects=False)
            assert page.status_code == 302 and page.headers["Location"].startswith("/login?next="), (path, page)
    assert throttled
    assert not conn.keys("rq:job:*") and not conn.smembers("taskrail:paused")
    assert anonymous.get(dash.url + "/login", timeout=30).status_code == 200
    assert anonymous.get(dash.url + "/public/style.css", timeout=30).status_code == 200


def test_metrics_open_only_when_asked(settings: Settings, procs: Processes) -> None:
    dash = start_dashboard(procs, "--public-metrics")
    assert requests.get(dash.url + "/metrics", timeout=30).status_code == 200
    assert requests.get(dash.url + "/api/queues", timeout=30).status_code == 401


def test_login_form_sets_a_strict_http_only_session(dash: Dashboard) -> None:
    browser = requests.Session()
    form = browser.get(dash.url + "/login?next=/api/queues", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    wrong = browser.post(dash.url + "/login", data={"password": "guess", "csrf_token": csrf}, timeout=30)
    assert wrong.status_code == 401 and "Wrong password or token." in wrong.text
    no_csrf = browser.post(dash.url + "/login", data={"password": PASSWORD}, timeout=30, allow_redirects=False)
    assert no_csrf.status_code == 403
    answer = browser.post(dash.url + "/login", data={"password": PASSWORD, "csrf_token": csrf, "next": "/api/queues"},
                          timeout=30, allow_redirects=False)  # fmt: skip
    assert answer.status_code == 302 and answer.headers["Location"] == "/api/queues"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert browser.get(dash.url + "/api/queues", timeout=30).status_code == 200
    # The token logs in too; a "next" to another site lands on the overview instead.
    other = requests.Session()
    csrf = re.search(r'value="([^"]+)"', other.get(dash.url + "/login", timeout=30).text).group(1)  # type: ignore[union-attr]
    answer = other.post(dash.url + "/login", data={"password": TOKEN, "csrf_token": csrf, "next": "//evil.example/"},
                        timeout=30, allow_redirects=False)  # fmt: skip
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    for target in ("/\t/evil.example/", "/\\evil.example", "https://evil.example/"):
        form = other.get(dash.url + "/login", params={"next": target}, timeout=30).text
        assert 'name="next" value="/"' in form, target


def test_cross_site_posts_without_the_csrf_token_are_refused(dash: Dashboard, conn: redis.Redis) -> None:
    browser, csrf = dash.browser_session()
    add = dash.url + "/api/tasks/tests.tasks_web.add"
    body = {"args": [1, 2]}
    assert browser.post(add, json=body, timeout=30).status_code == 403
    assert browser.post(add, json=body, headers={"X-CSRF-Token": "forged"}, timeout=30).status_code == 403
    evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert browser.post(add, json=body, headers=evil, timeout=30).status_code == 403
    assert browser.post(dash.url + "/api/queues/web/pause", timeout=30).status_code == 403
    assert not conn.keys("rq:job:*") and not conn.smembers("taskrail:paused")
    ok = browser.post(add, json=body, headers={"X-CSRF-Token": csrf, "Origin": dash.url}, timeout=30)
    assert ok.status_code == 202


def test_rq_dashboard_actions_need_post_and_the_csrf_token(dash: Dashboard, conn: redis.Redis) -> None:
    failed = dash.post("/api/tasks/tests.tasks_web.fail", json={"args": ["x"]}).json()["id"]
    # Fail it by hand (no worker here): what rq-dashboard's "requeue all" would act on.
    conn.hset(f"rq:job:{failed}", "status", "failed")
    conn.lrem("rq:queue:web", 0, failed)
    conn.zadd("rq:failed:web", {failed: 9e9})
    browser, csrf = dash.browser_session()
    # An <img src=".../requeue/web"> on another site: GET is refused whatever the cookie says.
    assert browser.get(dash.url + "/rq/requeue/web", timeout=30).status_code == 405
    for path in (
        "/rq/requeue/web",
        f"/rq/job/{failed}/requeue",
        f"/rq/job/{failed}/delete",
        "/rq/queue/web/failed/empty",
    ):
        assert browser.post(dash.url + path, timeout=30).status_code == 403, path
    # The right token from another site's page (its Origin, or "null" from a sandboxed frame) is refused too.
    for origin in ("http://evil.example", "null"):
        cross = {"X-CSRF-Token": csrf, "Origin": origin}
        assert browser.post(dash.url + "/rq/requeue/web", headers=cross, timeout=30).status_code == 403, origin
    assert conn.hget(f"rq:job:{failed}", "status") == b"failed"
    answer = browser.post(
        dash.url + "/rq/requeue/web", headers={"X-CSRF-Token": csrf, "Origin": dash.url}, timeout=30
    )  # fmt: skip
    assert answer.status_code == 200 and answer.json() == {"status": "OK", "count": 1}
    assert conn.hget(f"rq:job:{failed}", "status") == b"queued"
    assert conn.lrange("rq:queue:web", 0, -1) == [failed.encode()]
    deleted = browser.post(dash.url + f"/rq/job/{failed}/delete", headers={"X-CSRF-Token": csrf}, timeout=30)
    assert deleted.json() == {"status": "OK"}
    assert not conn.exists(f"rq:job:{failed}") and not conn.llen("rq:queue:web")


def test_security_headers_on_every_kind_of_page(dash: Dashboard) -> None:
    for path in ("/", "/api/queues", "/rq/", "/login", "/jobs/nope"):
        headers = dash.get(path).headers
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff", path
        assert (
            headers["Referrer-Policy"] == "same-origin"
            and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        )
    own = dash.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in own and "unsafe-inline" not in own
    rq_page = dash.get("/rq/")
    nonce = re.search(r"'nonce-([^']+)'", rq_page.headers["Content-Security-Policy"]).group(1)  # type: ignore[union-attr]
    scripts = re.findall(r"<script\b[^>]*>", rq_page.text)
    assert scripts and all(f'nonce="{nonce}"' in s for s in scripts)
    assert '<meta name="csrf-token"' in rq_page.text and "/static/rq-csrf.js" in rq_page.text


def test_markup_in_job_arguments_is_escaped(dash: Dashboard) -> None:
    job_id = dash.post("/api/tasks/tests.tasks_web.echo", json={"args": [SCRIPT]}).json()["id"]
    page = dash.get(f"/jobs/{job_id}").text
    assert SCRIPT not in page and "&lt;script&gt;alert(" in page
    data = dash.get(f"/rq/0/data/job/{job_id}.json").json()  # its job page puts these in raw
    assert "<" not in data["description"] and "&lt;script&gt;" in data["description"]
    listing = dash.get("/rq/0/data/jobs/web/queued/8/asc/1.json").json()  # its list escapes by itself
    assert SCRIPT in listing["jobs"][0]["description"]
    assert dash.get("/api/jobs/" + job_id).json()["args"] == [SCRIPT]  # the API gives data, not HTML


def test_markup_in_result_keys_is_escaped_for_rq_dashboard(dash: Dashboard, procs: Processes) -> None:
    procs.worker("web", env=WEB)
    job_id = dash.post("/api/tasks/tests.tasks_web.keyed", json={"args": [SCRIPT]}).json()["id"]
    wait_for(lambda: dash.job(job_id)["state"] == "SUCCESS", 30, what="the job to finish")
    data = dash.get(f"/rq/0/data/job/{job_id}.json").json()  # its job page puts JSON.stringify(result) in raw
    assert list(data["result"]) == [str(escape(SCRIPT))] and data["result"][str(escape(SCRIPT))] == "value"
    assert dash.get("/api/jobs/" + job_id).json()["result"] == {SCRIPT: "value"}


def test_rq_dashboard_navbar_shows_no_redis_password(redis_url: str, conn: redis.Redis, procs: Processes) -> None:
    secret = "Sup3rS3cretPW"
    conn.acl_setuser("app", enabled=True, passwords=[f"+{secret}"], keys=["*"], channels=["*"], commands=["+@all"])
    try:
        dash = start_dashboard(procs, env={"REDIS_URL": f"{redis_url}?username=app&password={secret}"})
        page = dash.get("/rq/")
        assert page.status_code == 200 and 'id="rq-instances"' in page.text
        assert secret not in page.text and "password=***" in page.text
    finally:
        conn.acl_deluser("app")


def test_rq_dashboard_paths_are_checked(dash: Dashboard) -> None:
    for path in (
        "/rq/0/view/jobs/x');alert(1);//'/queued/8/asc/1",
        "/rq/0/view/jobs/web/bogus/8/asc/1",
        "/rq/1/view/queues",
        "/rq/0/data/jobs/web/queued/-1/asc/1.json",
        "/rq/0/view/job/a%3Cb",
    ):
        assert dash.get(path).status_code == 404, path


def test_refuses_to_listen_on_all_interfaces_without_a_secret(env: dict[str, str], procs: Processes) -> None:
    open_env = {k: v for k, v in env.items() if not k.startswith("TASKRAIL_DASHBOARD_")}
    done = subprocess.run([str(BIN / "taskrail"), "dashboard", "--host", "0.0.0.0", "--port", "0"], env=open_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == RET_CONFIG
    assert "refusing to serve the dashboard on 0.0.0.0" in done.stderr and "TASKRAIL_DASHBOARD_PASSWORD" in done.stderr
    # With a secret it starts (and still asks for it).
    dash = start_dashboard(procs, "--host", "0.0.0.0")
    assert requests.get(dash.url.replace("0.0.0.0", "127.0.0.1") + "/api/queues", timeout=30).status_code == 401


def test_no_secret_on_loopback_generates_a_password(env: dict[str, str], procs: Processes) -> None:
    proc = procs.start([str(BIN / "taskrail"), "dashboard", "--port", "0"], name="dashboard")
    found = wait_for(
        lambda: re.search(r"password for this run: (\S+)", procs.log(proc)), 30, what="a generated password"
    )
    password = found.group(1)  # type: ignore[union-attr]
    assert len(password) >= 20
    url = str(wait_for(lambda: listening_url(procs.log(proc)), 30, what="the dashboard's address"))
    dash = Dashboard(url, proc)
    wait_for(lambda: requests.get(url + "/login", timeout=30).status_code == 200, 30, what="the login page")
    session, _ = dash.browser_session(password)  # logs in with it, through the form, as a person would
    assert session.get(url + "/api/queues", timeout=30).status_code == 200
    assert requests.get(url + "/api/queues", timeout=30).status_code == 401  # and nobody without it
