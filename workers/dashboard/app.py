"""The dashboard's Flask app: overview at ``/``, rq-dashboard at ``/rq``, the API at ``/api``, ``/metrics``.

Built by :func:`create_app` from settings and an :class:`AuthConfig`; nothing is read at import.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import redis
from flask import Flask, Response, current_app, g, jsonify, request, send_from_directory
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rq.exceptions import NoSuchJobError
from werkzeug.exceptions import HTTPException

from config.connection import redis_url
from config.settings import Settings
from tasks.core.client import Client
from tasks.core.registry import import_task_modules
from workers.dashboard import api, auth, inspect_api, loginlink, overview
from workers.dashboard.auth import SESSION_HOURS, AuthConfig
from workers.dashboard.hosts import AllowedHosts, check_host
from workers.dashboard.loginlink import LoginLink
from workers.dashboard.rqmount import mount_rq_dashboard
from workers.dashboard.sessions import FailureThrottle, SessionStore
from workers.metrics import build_registry

__all__ = ["CSP", "create_app"]

HERE = Path(__file__).resolve().parent
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(
    settings: Settings,
    auth_config: AuthConfig,
    *,
    secure_cookie: bool = False,
    allowed_hosts: AllowedHosts | None = None,
    login_link: LoginLink | None = None,
) -> Flask:
    """The whole dashboard, connected to the configured server.

    ``allowed_hosts`` are the ``Host`` names it answers to; by default the loopback names only.
    ``login_link`` is the one-time login link printed on the terminal, if any.

    Raises:
        ConfigError: a task module cannot be imported, or the Redis URL is malformed.
        ConnectionFailed: the server does not answer.
    """
    import_task_modules(settings.imports)
    client = Client(settings)
    app = Flask("workers.dashboard", root_path=str(HERE), static_folder="static", template_folder="templates")
    app.secret_key = secrets.token_bytes(32)  # sessions end when the dashboard restarts
    app.config.update(
        SESSION_COOKIE_NAME="taskrail_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=settings.max_payload_bytes * 2 + 4096,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["taskrail.auth"] = auth_config
    app.extensions["taskrail.client"] = client
    app.extensions["taskrail.allowed_hosts"] = allowed_hosts or AllowedHosts()
    app.extensions["taskrail.sessions"] = SessionStore(client.redis, SESSION_HOURS * 3600)
    app.extensions["taskrail.throttle"] = FailureThrottle(client.redis)
    app.extensions["taskrail.login_link"] = login_link
    app.before_request(check_host)
    app.before_request(auth.guard)
    app.after_request(_security_headers)
    app.register_blueprint(auth.blueprint)
    app.register_blueprint(loginlink.blueprint)
    app.register_blueprint(overview.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(inspect_api.blueprint)
    mount_rq_dashboard(app, client.redis, redis_url(settings))
    app.add_url_rule("/metrics", "metrics", _metrics)
    app.add_url_rule("/public/<path:filename>", "public", _public)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(NoSuchJobError, lambda exc: _json_error(404, "no such job"))
    app.register_error_handler(redis.ConnectionError, lambda exc: _json_error(503, f"Redis is unreachable: {exc}"))
    return app


def _public(filename: str) -> Response:
    """The stylesheet and icon the login page needs; the only files served without credentials."""
    return send_from_directory(HERE / "static" / "public", filename)


def _metrics() -> Response:
    """Prometheus text from workers/metrics.py's collector (the same numbers ``taskrail metrics`` serves)."""
    client: Client = current_app.extensions["taskrail.client"]
    return Response(generate_latest(build_registry(client.redis)), mimetype=CONTENT_TYPE_LATEST)


def _json_error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    wants_json = request.accept_mimetypes.best == "application/json"
    if wants_json or request.path.startswith("/api/") or request.path == "/metrics":
        return _json_error(exc.code or 500, exc.description or exc.name)
    return exc.get_response()  # type: ignore[return-value]


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", g.get("csp", CSP))
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(("/static/", "/public/", "/rq/static/")):
        response.headers["Cache-Control"] = "no-store"
    return response
