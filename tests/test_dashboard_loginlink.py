"""The one-time login link: a secretless ``taskrail dashboard`` prints it, it logs one browser in once, only from
this machine, only while fresh; its secret never reaches the server in a URL, so no access log holds it."""

from __future__ import annotations

import re

import requests

from config.settings import Settings
from tests.conftest import BIN, Processes, wait_for
from tests.tasks_web import WEB, _meta_or_field
from workers.dashboard import AuthConfig, LoginLink, create_app

LINK = re.compile(r"log in once \(single use, 10 minutes, this machine only\): (http://\S+)/login#once=(\S+)")


def log_in_once(session: requests.Session, base: str, secret: str) -> requests.Response:
    csrf = _meta_or_field(session.get(base + "/login", timeout=30).text)
    form = {"csrf_token": csrf, "next": "/", "once": secret}
    return session.post(base + "/login/once", data=form, timeout=30, allow_redirects=False)


def test_a_link_works_once_and_only_while_fresh() -> None:
    link, secret = LoginLink.new()
    assert not link.consume("wrong" + secret)
    assert link.consume(secret)
    assert not link.consume(secret)
    assert not LoginLink(secret, ttl_s=-1).consume(secret)  # past its lifetime


def test_secretless_dashboard_prints_a_link_that_logs_in_once(settings: Settings, procs: Processes) -> None:
    environ = {**WEB, "TASKRAIL_DASHBOARD_PASSWORD": "", "TASKRAIL_DASHBOARD_TOKEN": ""}
    proc = procs.start([str(BIN / "taskrail"), "dashboard", "--port", "0"], env=environ, name="dashboard")
    found = wait_for(lambda: LINK.search(procs.log(proc)), 30, interval=0.1, what="the login link")
    base, secret = found.group(1), found.group(2)  # type: ignore[union-attr]
    assert "password for this run: " in procs.log(proc)

    browser = requests.Session()
    answer = log_in_once(browser, base, secret)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    assert browser.get(base + "/api/queues", timeout=30).status_code == 200
    again = log_in_once(requests.Session(), base, secret)
    assert again.status_code == 401 and "used already" in again.text
    # The access log has both posts, never the secret: it is only in the line printed for the terminal.
    assert procs.log(proc).count("POST /login/once") == 2 and procs.log(proc).count(secret) == 1


def test_a_link_is_refused_to_another_machine_and_stays_unused(settings: Settings) -> None:
    link, secret = LoginLink.new()
    app = create_app(settings, AuthConfig(password="pw"), login_link=link)
    for remote, expected in (("10.1.2.3", 401), ("127.0.0.1", 302)):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = remote
        page = client.get("/login").get_data(as_text=True)
        form = {"csrf_token": _meta_or_field(page), "next": "/", "once": secret}
        answer = client.post("/login/once", data=form, headers={"Origin": "http://localhost"})
        assert answer.status_code == expected, (remote, answer.get_data(as_text=True))
