"""Credentials over time: throttled guessing per client, logout that ends the session, the Host allow-list."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from config.errors import ConfigError
from config.settings import Settings
from tests.conftest import Processes
from tests.tasks_web import PASSWORD, TOKEN, Dashboard, start_dashboard
from workers.dashboard import AllowedHosts
from workers.dashboard.sessions import FAILED_LIMIT


class FromAddress(HTTPAdapter):
    """Connects from a given local address: another client, as the dashboard sees it (any 127.x is loopback)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client(address: str = "127.0.0.1") -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(address))
    return session


def login(dash: Dashboard, session: requests.Session, password: str) -> requests.Response:
    form = session.get(dash.url + "/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    return session.post(dash.url + "/login", data={"password": password, "csrf_token": csrf}, timeout=30,
                        allow_redirects=False)  # fmt: skip


@pytest.fixture
def dash(settings: Settings, procs: Processes) -> Dashboard:
    return start_dashboard(procs)


def test_wrong_bearer_tokens_are_throttled_per_client(dash: Dashboard) -> None:
    guesser, other = client("127.0.0.1"), client("127.0.0.2")
    queues = dash.url + "/api/queues"
    for i in range(FAILED_LIMIT):
        answer = guesser.get(queues, headers={"Authorization": f"Bearer guess-{i}"}, timeout=30)
        assert answer.status_code == 401, (i, answer.status_code)
    answer = guesser.get(queues, headers={"Authorization": "Bearer one-more"}, timeout=30)
    assert answer.status_code == 429 and 1 <= int(answer.headers["Retry-After"]) <= 60
    # Even the right token waits: guessing learns nothing while the client is throttled.
    assert guesser.get(queues, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).status_code == 429
    # Another client is not affected, by header or by form.
    assert other.get(queues, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).status_code == 200
    assert login(dash, other, PASSWORD).status_code == 302
    # The guessing client's login form waits too.
    blocked = login(dash, client("127.0.0.1"), PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1


def test_failed_logins_lock_out_only_the_client_that_made_them(dash: Dashboard) -> None:
    guesser = client("127.0.0.1")
    for i in range(FAILED_LIMIT):
        assert login(dash, guesser, f"guess-{i}").status_code == 401, i
    blocked = login(dash, guesser, PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    # The real user, from another address, logs in and works.
    user = client("127.0.0.3")
    assert login(dash, user, PASSWORD).status_code == 302
    assert user.get(dash.url + "/api/queues", timeout=30).status_code == 200
    assert client("127.0.0.3").get(dash.url + "/api/queues", headers={"Authorization": f"Bearer {TOKEN}"},
                                   timeout=30).status_code == 200  # fmt: skip


def test_the_password_is_not_a_bearer_token(dash: Dashboard) -> None:
    answer = requests.get(dash.url + "/api/queues", headers={"Authorization": f"Bearer {PASSWORD}"}, timeout=30)
    assert answer.status_code == 401
    assert dash.get("/api/queues").status_code == 200  # the token is


def test_a_cookie_replayed_after_logout_is_refused(dash: Dashboard) -> None:
    browser, csrf = dash.browser_session()
    cookies = browser.cookies.get_dict()
    assert browser.get(dash.url + "/api/queues", timeout=30).status_code == 200
    out = browser.post(dash.url + "/logout", headers={"X-CSRF-Token": csrf}, timeout=30, allow_redirects=False)
    assert out.status_code == 302
    replay = requests.Session()
    replay.cookies.update(cookies)
    assert replay.get(dash.url + "/api/queues", timeout=30).status_code == 401
    pause = replay.post(dash.url + "/api/queues/web/pause", headers={"X-CSRF-Token": csrf}, timeout=30)
    assert pause.status_code == 401
    # Logging in again gives a new session; the old cookie stays dead.
    again, _ = dash.browser_session()
    assert again.get(dash.url + "/api/queues", timeout=30).status_code == 200
    assert replay.get(dash.url + "/api/queues", timeout=30).status_code == 401


def test_a_host_name_not_allowed_gets_400(dash: Dashboard) -> None:
    browser, csrf = dash.browser_session()
    # Set by hand: requests picks cookies by the Host header, a browser after DNS rebinding by the address.
    cookie = "taskrail_session=" + browser.cookies["taskrail_session"]
    port = dash.url.rsplit(":", 1)[1]
    add = dash.url + "/api/tasks/tests.tasks_web.add"

    def post(host: str) -> int:
        headers = {"Host": host, "Origin": f"http://{host}", "X-CSRF-Token": csrf, "Cookie": cookie}
        return requests.post(add, json={"args": [1, 2]}, headers=headers, timeout=30).status_code

    assert post(f"evil.example:{port}") == 400
    assert requests.get(dash.url + "/api/queues", headers={"Host": "evil.example", "Cookie": cookie},
                        timeout=30).status_code == 400  # fmt: skip
    assert requests.get(dash.url + "/login", headers={"Host": "evil.example"}, timeout=30).status_code == 400
    assert dash.get("/api/queues", headers={"Host": "evil.example"}).status_code == 400
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST"):
        assert dash.get("/api/queues", headers={"Host": host}).status_code == 200, host
    assert post(f"localhost:{port}") == 202


def test_allowed_hosts_behind_a_proxy(settings: Settings, procs: Processes) -> None:
    dash = start_dashboard(procs, "--host", "0.0.0.0", "--allowed-host", "taskrail-dashboard",
                           env={"TASKRAIL_DASHBOARD_ALLOWED_HOSTS": "dash.example.com, .corp.example"})  # fmt: skip
    dash.url = dash.url.replace("0.0.0.0", "127.0.0.1")
    for host in ("dash.example.com", "dash.example.com:443", "ops.corp.example", "taskrail-dashboard:9181",
                 "10.1.2.3:9181", "[fd00::5]:9181", "localhost"):  # fmt: skip
        assert dash.get("/api/queues", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "dash.example.com.evil.example", "corp.example.evil", "a:b:c", ""):
        assert dash.get("/api/queues", headers={"Host": host}).status_code == 400, host


def test_allowed_hosts_for_a_bind() -> None:
    loopback = AllowedHosts.for_bind("127.0.0.1", environ={})
    assert loopback.allows("127.0.0.1:9181") and loopback.allows("localhost") and loopback.allows("[::1]:80")
    assert not loopback.allows("10.0.0.1") and not loopback.allows("evil.example")
    bound = AllowedHosts.for_bind("10.0.0.5", ["dash.example.com"], environ={})
    assert bound.allows("10.0.0.5:9181") and bound.allows("Dash.Example.com.") and not bound.allows("10.0.0.6")
    everywhere = AllowedHosts.for_bind("0.0.0.0", environ={"TASKRAIL_DASHBOARD_ALLOWED_HOSTS": ".example.com"})
    assert everywhere.allows("10.0.0.6") and everywhere.allows("example.com") and everywhere.allows("a.example.com")
    assert not everywhere.allows("badexample.com")
    with pytest.raises(ConfigError, match="TASKRAIL_DASHBOARD_ALLOWED_HOSTS: 'https://x/' is not a host name"):
        AllowedHosts.for_bind("127.0.0.1", environ={"TASKRAIL_DASHBOARD_ALLOWED_HOSTS": "https://x/"})
