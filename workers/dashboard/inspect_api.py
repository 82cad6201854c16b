"""Inspect and control in the dashboard: ``/api/inspect/<name>``, ``/api/control/...`` and the ``/workers`` page.

The same calls as ``taskrail inspect`` and ``taskrail control`` (workers/inspect.py), with the same
answers as JSON: per worker its answer, its error, and the workers that did not answer in time.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from config.errors import ConfigError
from tasks.core.client import Client
from workers import inspect
from workers.control import INSPECT
from workers.dashboard.api import ApiError
from workers.dashboard.auth import csrf_token
from workers.dashboard.rqmount import PREFIX

__all__ = ["PAGE_KINDS", "blueprint"]

PAGE_KINDS = ("stats", "active", "reserved")  # what the /workers page asks, in this order

blueprint = Blueprint("inspect", __name__)


def _client() -> Client:
    client: Client = current_app.extensions["taskrail.client"]
    return client


def _timeout(raw: Any) -> float:
    try:
        return inspect.check_timeout(float(raw) if raw is not None else 1.0)
    except (TypeError, ValueError):
        raise ApiError(400, f"timeout must be a number of seconds above 0 and at most 60, got {raw!r}") from None


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


@blueprint.errorhandler(ConfigError)
def _refused(exc: ConfigError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return jsonify(error=exc.message), exc.status


@blueprint.get("/api/inspect/<name>")
def inspect_workers(name: str) -> Response:
    """Every live worker's (or ``?worker=``'s) answer to ``name``: active, reserved, scheduled, ..."""
    if name not in INSPECT:
        raise ApiError(404, f"inspect {name!r} is not known; use one of {', '.join(INSPECT)}")
    found = inspect.inspect_workers(
        _client().redis, name, request.args.get("worker"), _timeout(request.args.get("timeout"))
    )
    return jsonify(found.to_json())


@blueprint.post("/api/control/rate_limit")
def rate_limit() -> Response:
    """Body ``{"task", "rate", "worker"?, "timeout"?}``: the task's rate limit in every live worker."""
    body = _body()
    task, rate = body.get("task"), body.get("rate")
    if not isinstance(task, str) or not isinstance(rate, str):
        raise ApiError(400, "the body needs 'task' (a task name) and 'rate' (like '10/s', or '0' for none)")
    found = inspect.rate_limit(_client().redis, task, rate, body.get("worker"), _timeout(body.get("timeout")))
    return jsonify(found.to_json())


@blueprint.post("/api/control/revoke")
def revoke() -> Response:
    """Body ``{"ids": [...], "terminate"?: false}``: cancel waiting jobs; with terminate stop running ones."""
    body = _body()
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "the body needs 'ids': a non-empty list of job ids")
    return jsonify(outcomes=inspect.revoke(_client(), ids, bool(body.get("terminate"))))


@blueprint.post("/api/control/shutdown")
def shutdown() -> Response:
    """Body ``{"worker"?, "timeout"?}``: a graceful stop of every live worker (or one)."""
    body = _body()
    return jsonify(inspect.shutdown(_client().redis, body.get("worker"), _timeout(body.get("timeout"))).to_json())


@blueprint.get("/workers")
def workers_page() -> str:
    """Each live worker: its stats, the jobs it runs and the ones it claimed, or that it did not answer."""
    conn = _client().redis
    found = {kind: inspect.inspect_workers(conn, kind) for kind in PAGE_KINDS}
    names = sorted({name for answers in found.values() for name in (*answers.answers, *answers.not_answering)})
    return render_template("workers.html", csrf=csrf_token(), rq_prefix=PREFIX, names=names, found=found)
