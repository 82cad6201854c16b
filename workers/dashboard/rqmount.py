"""rq-dashboard 0.9.0 mounted at ``/rq``, with the holes it ships with closed.

As shipped it reads jobs with pickle, makes a Redis connection per request, accepts "requeue all" over
GET, sends its actions without CSRF tokens, puts job descriptions, results and errors into pages
unescaped (``<%= %>`` in its underscore templates) and echoes the queue name from the URL into a
script. Here:

- jobs are read with RQ's JSON serializer, on the app's one connection (one instance, number 0);
- path parameters are checked (queue names, registry names, order, job ids) before its views run;
- its state-changing routes answer only POST, and the app's guard demands the CSRF token on POST;
  its pages get the token in a meta tag and ``rq-csrf.js``, which adds it to every jQuery request;
- its JSON data is HTML-escaped where its templates insert it raw;
- its pages run under a CSP with a per-response nonce on their scripts (it needs ``unsafe-eval``,
  as underscore compiles templates with ``new Function``);
- "requeue" and "requeue all" go through taskrail's requeue (RQ's own would rewrite the job hash
  with pickle).
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import redis
import rq_dashboard
import rq_dashboard.web
from flask import Flask, Response, abort, current_app, g, jsonify, request, url_for
from markupsafe import escape
from rq.serializers import JSONSerializer

from config.urls import redact_url
from tasks.core.validate import is_queue_name
from workers.dashboard.actions import requeue_failed, requeue_job
from workers.dashboard.auth import csrf_token

__all__ = ["BLUEPRINT", "JOB_ID", "WRITE_ENDPOINTS", "mount_rq_dashboard"]

BLUEPRINT = "rq_dashboard"
PREFIX = "/rq"
WRITE_ENDPOINTS = frozenset(
    f"{BLUEPRINT}.{name}"
    for name in ("delete_job_view", "requeue_job_view", "requeue_all", "empty_queue", "compact_queue")
)
REGISTRY_NAMES = frozenset({"queued", "failed", "deferred", "started", "finished", "scheduled", "canceled"})
JOB_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,200}")
_DIGITS = re.compile(r"[0-9]{1,6}")
# Keys its templates already escape themselves (jQuery .text() or <%- %>), per data endpoint.
_ESCAPED_BY_PAGE = {
    f"{BLUEPRINT}.list_jobs": frozenset({"description", "exc_info"}),
    f"{BLUEPRINT}.list_workers": frozenset({"description"}),
}
_VALID = {
    "queue_name": is_queue_name,
    "registry_name": lambda v: v in REGISTRY_NAMES,
    "order": lambda v: v in ("asc", "dsc"),
    "job_id": lambda v: bool(JOB_ID.fullmatch(v)),
    "per_page": lambda v: bool(_DIGITS.fullmatch(str(v))) and 0 < int(v) <= 1000,
    "page": lambda v: bool(_DIGITS.fullmatch(str(v))) and int(v) > 0,
    "instance_number": lambda v: v == 0,
}
RQ_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def mount_rq_dashboard(app: Flask, conn: redis.Redis, url: str) -> None:
    """Register rq-dashboard's blueprint at ``/rq`` on ``app``, reading jobs as JSON over ``conn``."""
    rq_dashboard.web.config.serializer = JSONSerializer
    # Only shown in its navbar (its connection is ours): its own masking misses "?password=".
    app.config["RQ_DASHBOARD_REDIS_URL"] = (redact_url(url),)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.redis_conn = conn  # type: ignore[attr-defined]
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    # Its own before_request opens a new connection per request from the URL; ours checks the path.
    app.before_request_funcs[BLUEPRINT] = [_check_request]
    app.after_request_funcs.setdefault(BLUEPRINT, []).append(_harden_response)
    app.view_functions[f"{BLUEPRINT}.requeue_job_view"] = _requeue_one
    app.view_functions[f"{BLUEPRINT}.requeue_all"] = _requeue_all


def _check_request() -> None:
    if request.endpoint in WRITE_ENDPOINTS and request.method != "POST":
        abort(405)
    for name, value in (request.view_args or {}).items():
        check = _VALID.get(name)
        if check is not None and not check(value):
            abort(404)


def _requeue_one(job_id: str) -> Response:
    outcome = requeue_job(current_app.extensions["taskrail.client"], job_id)
    return jsonify(status="OK" if outcome == "requeued" else "ERROR", outcome=outcome)


def _requeue_all(queue_name: str) -> Response:
    count = requeue_failed(current_app.extensions["taskrail.client"], queue_name)
    return jsonify(status="OK", count=count)


def _escape_strings(value: Any, keep: frozenset[str], key: str = "") -> Any:
    if isinstance(value, str):
        return value if key in keep else str(escape(value))
    if isinstance(value, list):
        return [_escape_strings(item, keep, key) for item in value]
    if isinstance(value, dict):
        # Keys too: its job page inserts JSON.stringify(result) raw, keys and all.
        return {str(escape(k)): _escape_strings(v, keep, k) for k, v in value.items()}
    return value


def _harden_response(response: Response) -> Response:
    if response.direct_passthrough:
        return response
    if response.mimetype == "application/json":
        data = json.loads(response.get_data(as_text=True))
        keep = _ESCAPED_BY_PAGE.get(request.endpoint or "", frozenset())
        response.set_data(json.dumps(_escape_strings(data, keep)))
    elif response.mimetype == "text/html":
        nonce = secrets.token_urlsafe(16)
        html = response.get_data(as_text=True)
        html = re.sub(r"<script\b", f'<script nonce="{nonce}"', html)
        meta = f'<meta name="csrf-token" content="{escape(csrf_token())}">'
        helper = f'<script nonce="{nonce}" src="{url_for("static", filename="rq-csrf.js")}"></script>'
        html = html.replace("<head>", f"<head>\n{meta}", 1)
        home = f'<a class="navbar-brand" href="{url_for("overview.index")}">taskrail</a>'
        html = html.replace('<a class="navbar-brand">', f'{home}<a class="navbar-brand">', 1)
        # Its icon link names the host app's /static/favicon.ico; ours is an SVG.
        html = html.replace(url_for("static", filename="favicon.ico"), url_for("public", filename="favicon.svg"), 1)
        # After jQuery; its pages post only on clicks, so every $.post then carries the token.
        html = html.replace("</body>", f"{helper}\n</body>", 1)
        response.set_data(html)
        g.csp = RQ_CSP.format(nonce=nonce)
    return response
