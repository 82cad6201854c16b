"""Who may use the dashboard: a password or token from the environment, a browser session, CSRF tokens.

Every request passes :func:`guard` (after the Host check). It answers 401 (or, for a browser asking for a
page, a redirect to the login form) unless the request carries ``Authorization: Bearer <token>`` (the API
token, never the password) or the cookie of a session that is still alive in Redis (logout ends it); and
it refuses any state-changing request made with the session cookie unless it brings the session's CSRF
token (the ``X-CSRF-Token`` header or a ``csrf_token`` form field). Secrets are compared with
:func:`hmac.compare_digest`; wrong ones, by form or by header, are counted per client address, and a
client past the limit gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from workers.dashboard.sessions import FailureThrottle, SessionStore

__all__ = [
    "PASSWORD_ENV",
    "TOKEN_ENV",
    "AuthConfig",
    "blueprint",
    "count_failure",
    "csrf_ok",
    "csrf_token",
    "guard",
    "login_form",
    "safe_next",
    "start_session",
    "throttled",
    "too_many_form",
]

PASSWORD_ENV = "TASKRAIL_DASHBOARD_PASSWORD"
TOKEN_ENV = "TASKRAIL_DASHBOARD_TOKEN"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without credentials: the login form and the files it needs.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.login_post", "loginlink.login_once", "public"})
SESSION_HOURS = 12
LOCAL_PATH = re.compile(r"/[A-Za-z0-9_.~%/?=&+:@,-]*")

blueprint = Blueprint("auth", __name__)


@dataclass(frozen=True)
class AuthConfig:
    """The secrets the dashboard accepts, and whether ``/metrics`` is open to scrapers."""

    password: str | None = None
    token: str | None = None
    public_metrics: bool = False
    generated: bool = False  # the password was made up for this run (nothing was configured)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, public_metrics: bool = False) -> AuthConfig:
        env = os.environ if environ is None else environ
        return cls(env.get(PASSWORD_ENV) or None, env.get(TOKEN_ENV) or None, public_metrics)

    @property
    def configured(self) -> bool:
        """True when the operator set a password or token (a generated one does not count)."""
        return bool(self.password or self.token) and not self.generated

    def with_generated_password(self) -> AuthConfig:
        """This config, or, when no secret is set, one with a random password for this run only."""
        if self.password or self.token:
            return self
        return AuthConfig(secrets.token_urlsafe(18), None, self.public_metrics, generated=True)

    def matches(self, secret: str) -> bool:
        """True when ``secret`` is the password or the token (what the login form takes), in constant time."""
        return _any_equal(secret, (self.password, self.token))

    def matches_token(self, secret: str) -> bool:
        """True when ``secret`` is the API token: a Bearer header never takes the password."""
        return _any_equal(secret, (self.token,))


def _any_equal(given: str, expected: tuple[str | None, ...]) -> bool:
    ok = False
    for value in expected:
        if value is not None:
            ok |= hmac.compare_digest(given.encode(), value.encode())
    return ok


def _config() -> AuthConfig:
    config: AuthConfig = current_app.extensions["taskrail.auth"]
    return config


def csrf_token() -> str:
    """The session's CSRF token, made on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def _sessions() -> SessionStore:
    store: SessionStore = current_app.extensions["taskrail.sessions"]
    return store


def _throttle() -> FailureThrottle:
    throttle: FailureThrottle = current_app.extensions["taskrail.throttle"]
    return throttle


def _client() -> str:
    """Whom failures are counted against: the peer address (behind a proxy, the proxy's)."""
    return request.remote_addr or "unknown"


def _logged_in() -> bool:
    started = session.get("login_at")
    if not isinstance(started, int | float) or time.time() - started >= SESSION_HOURS * 3600:
        return False
    return _sessions().alive(session.get("sid"))  # ended by logout, or by Redis' expiry


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        return False
    origin = request.headers.get("Origin")
    # A browser names the site that sent a POST; another site's (or "null") is refused even with a token.
    return origin is None or urlsplit(origin).netloc == request.host


def _too_many(retry_after_s: int) -> Response:
    response = jsonify(error=f"too many wrong passwords or tokens from your address; try again in {retry_after_s} s")
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after_s)
    return response


def _refuse(status: int, message: str) -> Response:
    if status == 401 and request.method in SAFE_METHODS and "text/html" in request.headers.get("Accept", ""):
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("auth.login", next=target))  # type: ignore[return-value]
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="taskrail"'
    return response


def guard() -> Response | None:
    """The app's ``before_request`` after the Host check: refuse unless authenticated (CSRF-checked for writes)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    config = _config()
    if request.endpoint == "metrics" and config.public_metrics and request.method in SAFE_METHODS:
        return None
    bearer = _bearer()
    if bearer is not None:
        # Scripts authenticate every request; a browser never adds this header on its own, so no CSRF.
        # A throttled client is refused even with the right token, so guessing learns nothing meanwhile.
        wait = _throttle().retry_after(_client())
        if wait is not None:
            return _too_many(wait)
        if config.matches_token(bearer):
            return None
        _throttle().failed(_client())
        return _refuse(401, "wrong bearer token")
    if not _logged_in():
        return _refuse(401, f"log in at /login, or send 'Authorization: Bearer <{TOKEN_ENV}>'")
    if request.method not in SAFE_METHODS and not csrf_ok():
        return _refuse(403, "missing or wrong CSRF token: send the X-CSRF-Token header from the page's meta tag")
    return None


def safe_next(target: str | None) -> str:
    """Only a local path, so the login form cannot send anyone to another site.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash, so "/<tab>/evil.example"
    would become "//evil.example": anything but plain path and query characters is refused.
    """
    if not target or not LOCAL_PATH.fullmatch(target) or target.startswith("//"):
        return url_for("overview.index")
    return target


@blueprint.get("/login")
def login() -> str:
    return render_template("login.html", csrf=csrf_token(), next=safe_next(request.args.get("next")), error=None)


def login_form(target: str, error: str, status: int) -> tuple[str, int]:
    """The login form again, with an error."""
    return render_template("login.html", csrf=csrf_token(), next=target, error=error), status


def too_many_form(target: str, wait_s: int) -> tuple[str, int, dict[str, str]]:
    """The login form for a client past the failure limit: 429 with ``Retry-After``."""
    page, status = login_form(target, f"Too many attempts; wait {wait_s} s.", 429)
    return page, status, {"Retry-After": str(wait_s)}


def throttled() -> int | None:
    """Seconds this client must wait after too many wrong secrets, or None."""
    return _throttle().retry_after(_client())


def count_failure() -> None:
    """Count a wrong secret against this client."""
    _throttle().failed(_client())


def start_session() -> None:
    """Log this browser in: a fresh session (and CSRF token), against session fixation."""
    _sessions().end(session.get("sid"))
    session.clear()
    session.permanent = True
    session["login_at"] = time.time()
    session["sid"] = _sessions().create()
    csrf_token()


@blueprint.post("/login")
def login_post() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    target = safe_next(request.form.get("next"))
    if not csrf_ok():
        return login_form(target, "The form expired; try again.", 403)
    wait = throttled()
    if wait is not None:
        return too_many_form(target, wait)
    if not _config().matches(request.form.get("password", "")):
        count_failure()
        return login_form(target, "Wrong password or token.", 401)
    start_session()
    return redirect(target)  # type: ignore[return-value]


@blueprint.post("/logout")
def logout() -> Response:
    """End the session in Redis too: a copy of the cookie no longer works."""
    _sessions().end(session.get("sid"))
    session.clear()
    return redirect(url_for("auth.login"))  # type: ignore[return-value]
