"""Tasks for the dashboard tests (workers import them through TASKRAIL_IMPORTS), and the dashboard process.

:class:`Dashboard` starts ``taskrail dashboard`` as a real subprocess on a free port and talks HTTP to it.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tasks import task

WEB = {"TASKRAIL_IMPORTS": "tests.tasks_web"}
PASSWORD = "correct horse battery staple"
TOKEN = "t0ken-for-the-dashboard-tests"
_LISTENING = re.compile(r"taskrail dashboard on (http://\S+?)/\s")


@task(queue="web")
def add(a: int, b: int) -> int:
    return a + b


@task(queue="web")
def echo(text: str, *, times: int = 1) -> str:
    return text * times


@task(queue="web")
def keyed(key: str) -> dict[str, str]:
    """A result whose key is the caller's text (rq-dashboard's job page shows results as JSON)."""
    return {key: "value"}


@task(queue="web")
def fail(message: str) -> None:
    raise RuntimeError(message)


LONG_NAME = "tests.tasks_web.newsletters.send_the_weekly_summary"


@task(queue="web", name=LONG_NAME)
def long_named() -> str:
    """A task whose name is longer than the overview's charts used to have room for."""
    return "sent"


@task(queue="web")
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@dataclass
class Dashboard:
    """A running ``taskrail dashboard`` process and a requests session authenticated with the token."""

    url: str
    proc: subprocess.Popen[bytes]
    token: str = TOKEN
    api: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.api.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.api.get(self.url + path, timeout=30, allow_redirects=False, **kwargs)

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /api/jobs/<id>``, which must answer 200."""
        answer = self.get(f"/api/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        info: dict[str, Any] = answer.json()
        return info

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.api.post(self.url + path, timeout=30, allow_redirects=False, **kwargs)

    def browser_session(self, password: str = PASSWORD) -> tuple[requests.Session, str]:
        """A cookie session logged in through the form, like a browser; returns it and its CSRF token."""
        session = requests.Session()
        form = session.get(self.url + "/login", timeout=30)
        csrf = _meta_or_field(form.text)
        answer = session.post(self.url + "/login", data={"password": password, "csrf_token": csrf, "next": "/"},
                              timeout=30, allow_redirects=False)  # fmt: skip
        assert answer.status_code == 302, answer.text
        page = session.get(self.url + "/", timeout=30)
        return session, _meta_or_field(page.text)


def listening_url(log: str) -> str | None:
    """The address ``taskrail dashboard`` says it listens on, once its log says so."""
    found = _LISTENING.search(log)
    return found.group(1) if found else None


def _meta_or_field(html: str) -> str:
    match = re.search(r'name="csrf[-_]token" (?:content|value)="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1)


def start_dashboard(procs: Any, *args: str, env: dict[str, str] | None = None) -> Dashboard:
    """Start the dashboard on a free port (``--port 0``) and wait until it answers."""
    from tests.conftest import BIN, wait_for

    environ = {**WEB, "TASKRAIL_DASHBOARD_PASSWORD": PASSWORD, "TASKRAIL_DASHBOARD_TOKEN": TOKEN, **(env or {})}
    proc = procs.start([str(BIN / "taskrail"), "dashboard", "--port", "0", *args], env=environ, name="dashboard")

    def listening() -> str | None:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited with {proc.returncode}:\n{procs.log(proc)}")
        return listening_url(Path(proc.log_path).read_text(errors="replace"))  # type: ignore[attr-defined]

    url = str(wait_for(listening, 30, interval=0.1, what="the dashboard to listen"))
    dashboard = Dashboard(url, proc, environ["TASKRAIL_DASHBOARD_TOKEN"])
    wait_for(lambda: dashboard.get("/api/queues").status_code == 200, 30, interval=0.1, what="the dashboard API")
    return dashboard
