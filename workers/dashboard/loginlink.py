"""The one-time login link ``taskrail demo`` and a secretless ``taskrail dashboard`` print on the terminal.

The link is ``http://127.0.0.1:PORT/login#once=SECRET``: the secret sits in the URL's fragment, which a
browser never sends, so no access log ever sees it. The login page's script posts it (with the form's
CSRF token) to ``POST /login/once``, which starts a session when the secret matches, at most once, within
:data:`LINK_TTL_S` seconds of the start, and only for a client on this machine. Only its SHA-256 is kept.
A demo hands its secret to its dashboard process in :data:`LINK_ENV`, which the dashboard removes from
its environment at once; environments are readable by their user only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections.abc import MutableMapping

from flask import Blueprint, Response, current_app, redirect, request

from workers.dashboard import auth
from workers.dashboard.server import is_loopback

__all__ = ["LINK_ENV", "LINK_TTL_S", "LoginLink", "blueprint", "link_url"]

LINK_ENV = "TASKRAIL_DASHBOARD_LOGIN_LINK"
LINK_TTL_S = 600

blueprint = Blueprint("loginlink", __name__)


class LoginLink:
    """One secret that logs one browser in, once, within ``ttl_s`` seconds; thread-safe."""

    def __init__(self, secret: str, ttl_s: float = LINK_TTL_S) -> None:
        self._digest = hashlib.sha256(secret.encode()).digest()
        self._expires = time.monotonic() + ttl_s
        self._used = False
        self._lock = threading.Lock()

    @classmethod
    def new(cls) -> tuple[LoginLink, str]:
        """A fresh link and its secret (to print, never to store)."""
        secret = secrets.token_urlsafe(32)
        return cls(secret), secret

    @classmethod
    def from_env(cls, environ: MutableMapping[str, str] | None = None) -> LoginLink | None:
        """The link whose secret a demo passed in :data:`LINK_ENV` (taken out of the environment), or None."""
        secret = (os.environ if environ is None else environ).pop(LINK_ENV, "")
        return cls(secret) if secret else None

    def consume(self, secret: str) -> bool:
        """True the first time the right secret comes before expiry; False ever after."""
        digest = hashlib.sha256(secret.encode()).digest()
        with self._lock:
            if self._used or time.monotonic() > self._expires or not hmac.compare_digest(digest, self._digest):
                return False
            self._used = True
            return True


def link_url(base_url: str, secret: str) -> str:
    """What to open: the login page with the secret in the fragment."""
    return f"{base_url.rstrip('/')}/login#once={secret}"


@blueprint.post("/login/once")
def login_once() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Start a session from the one-time secret; a used, expired, wrong or remote one gets the form back."""
    link: LoginLink | None = current_app.extensions.get("taskrail.login_link")
    target = auth.safe_next(request.form.get("next"))
    if not auth.csrf_ok():
        return auth.login_form(target, "The form expired; try again.", 403)
    wait = auth.throttled()
    if wait is not None:
        return auth.too_many_form(target, wait)
    if link is None or not is_loopback(request.remote_addr or "") or not link.consume(request.form.get("once", "")):
        auth.count_failure()
        error = "This login link was used already, has expired, or is not for this address; log in with the password."
        return auth.login_form(target, error, 401)
    auth.start_session()
    return redirect(target)  # type: ignore[return-value]
