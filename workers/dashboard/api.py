"""The JSON HTTP API under ``/api``: enqueue registered tasks, follow and steer jobs and queues.

Authentication and CSRF are the app's guard's business (workers/dashboard/auth.py); errors answer
``{"error": "..."}`` with a message that says what was wrong.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from config.errors import ConfigError, EnqueueError, PayloadTooLarge, TaskFailed
from tasks.core import validate
from tasks.core.client import Client
from tasks.core.deadletters import DeadLetters
from tasks.core.protocol import DATA_ERRORS, MAX_NESTING, decode_data
from tasks.core.registry import all_tasks, lookup
from tasks.core.result import AsyncResult
from tasks.core.task import Task
from workers import census
from workers.dashboard import actions, stats
from workers.dashboard.openapi import document
from workers.dashboard.rqmount import JOB_ID
from workers.metrics import duration_percentiles

__all__ = ["ENQUEUE_OPTIONS", "blueprint"]

ENQUEUE_OPTIONS = ("queue", "priority", "countdown", "unique_key")
BODY_KEYS = ("args", "kwargs", "options")
RATE_MINUTES = 30

blueprint = Blueprint("api", __name__, url_prefix="/api")


class ApiError(Exception):
    """An answer other than success: HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> tuple[Response, int]:
    return jsonify(error=exc.message), exc.status


def _client() -> Client:
    client: Client = current_app.extensions["taskrail.client"]
    return client


def _job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise ApiError(404, f"no job {job_id!r}: job ids are letters, digits and _.:@+-")
    return job_id


def _queue(name: Any) -> str:
    try:
        return validate.queue_name(name)
    except ConfigError as exc:
        raise ApiError(400, str(exc)) from exc


def _parse_body() -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    try:
        body = request.get_json(silent=True) if request.content_length else {}
    except RecursionError as exc:  # Python's JSON parser gives up near 1000 levels
        raise ApiError(
            400, f"the body is nested too deeply to read; arguments may be nested at most {MAX_NESTING} levels deep"
        ) from exc
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object like {"args": [], "kwargs": {}, "options": {}}')
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise ApiError(400, f"unknown body key {unknown[0]!r}; known: {', '.join(BODY_KEYS)}")
    args, kwargs, options = body.get("args", []), body.get("kwargs", {}), body.get("options", {})
    if not isinstance(args, list):
        raise ApiError(400, f"'args' must be a JSON array, got {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise ApiError(400, f"'kwargs' must be a JSON object, got {type(kwargs).__name__}")
    if not isinstance(options, dict):
        raise ApiError(400, f"'options' must be a JSON object, got {type(options).__name__}")
    unknown = sorted(set(options) - set(ENQUEUE_OPTIONS))
    if unknown:
        raise ApiError(400, f"unknown option {unknown[0]!r}; known: {', '.join(ENQUEUE_OPTIONS)}")
    if "queue" in options:
        _queue(options["queue"])
    if "unique_key" in options and not isinstance(options["unique_key"], str):
        raise ApiError(400, f"option 'unique_key' must be a string, got {options['unique_key']!r}")
    return args, kwargs, options


def _signature(found: Task[Any, Any]) -> str:
    """``name(a: int, b: int) -> int``, annotations resolved where they can be, without a bound ``self``."""
    try:
        signature = inspect.signature(found.func, eval_str=True)
    except Exception:  # an annotation that does not resolve: show them as written
        signature = found.call_signature
    params = list(signature.parameters.values())[1 if found.options.bind else 0 :]
    return f"{found.name}{signature.replace(parameters=params)}"


@blueprint.get("/tasks")
def list_tasks() -> Response:
    """The registered tasks: name, default queue, signature."""
    found = [
        {"name": t.name, "queue": t.options.queue, "signature": _signature(t)}
        for t in sorted(all_tasks().values(), key=lambda t: t.name)
    ]
    return jsonify(tasks=found)


@blueprint.post("/tasks/<name>")
def enqueue(name: str) -> tuple[Response, int, dict[str, str]]:
    """Enqueue a registered task; 202 with the job id and where to follow it."""
    found = lookup(name)
    if found is None:
        raise ApiError(404, f"no registered task {name!r}; GET /api/tasks lists them")
    args, kwargs, options = _parse_body()
    try:  # checks the arguments against the signature and the options before writing anything
        result = found.apply_async(args, kwargs, client=_client(), **options)
    except PayloadTooLarge as exc:
        raise ApiError(413, str(exc)) from exc
    except (ConfigError, EnqueueError) as exc:
        raise ApiError(400, str(exc)) from exc
    status_url = url_for("api.job", job_id=result.id)
    queue = found.queue_for(options.get("queue"), _client().settings)
    return jsonify(id=result.id, task=name, queue=queue, status_url=status_url), 202, {"Location": status_url}


def describe_job(result: AsyncResult, rereads: int = 3) -> dict[str, Any] | None:
    """Everything ``GET /api/jobs/<id>`` shows, or None when there is no such job."""
    snap = result.snapshot()
    if not snap.fields:
        return None
    state = AsyncResult.state_of(snap)
    progress = snap.get("tr_progress")
    try:
        _name, args, kwargs = decode_data(snap.fields.get(b"data", b""))
    except DATA_ERRORS:  # not a taskrail job (or not JSON): show no arguments
        args, kwargs = [], {}
    info: dict[str, Any] = {
        "id": result.id,
        "task": snap.get("tr_task") or None,
        "queue": snap.get("origin") or None,
        "state": state,
        "status": snap.get("status"),
        "progress": {"percent": float(progress), "note": snap.get("tr_progress_note") or None} if progress else None,
        "attempts": int(snap.get("tr_attempts", "0") or 0),
        "retries": int(snap.get("tr_retries", "0") or 0),
        "args": args,
        "kwargs": kwargs,
        "created_at": snap.get("created_at") or None,
        "enqueued_at": snap.get("enqueued_at") or None,
        "started_at": snap.get("started_at") or None,
        "ended_at": snap.get("ended_at") or None,
        "result": None,
        "error": None,
    }
    if state in ("SUCCESS", "FAILURE"):
        outcome = result.result  # a second read: the job may have moved on (been requeued) since the first
        if AsyncResult.state_of(result.snapshot()) != state and rereads:
            return describe_job(result, rereads - 1)
        if isinstance(outcome, TaskFailed):
            info["error"] = {"type": outcome.exc_type, "message": outcome.message, "traceback": outcome.traceback}
        else:
            info["result"] = outcome
    return info


@blueprint.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    info = describe_job(AsyncResult(_job_id(job_id), client=_client()))
    if info is None:
        raise ApiError(404, f"no job {job_id!r} (never enqueued, or its result expired)")
    return jsonify(info)


@blueprint.post("/jobs/<job_id>/revoke")
def revoke(job_id: str) -> Response:
    """Cancel a waiting job, or ask the worker running it to stop it."""
    result = AsyncResult(_job_id(job_id), client=_client())
    outcome = result.revoke()  # canceled, stopping, "already <status>" or missing
    if outcome == "missing":
        raise ApiError(404, f"no job {job_id!r}")
    if outcome not in ("canceled", "stopping"):
        raise ApiError(409, f"job {job_id} is {outcome}; only waiting or running jobs can be revoked")
    return jsonify(id=job_id, outcome=outcome)


@blueprint.post("/jobs/<job_id>/requeue")
def requeue(job_id: str) -> Response:
    """Put a failed job back on its queue."""
    outcome = actions.requeue_job(_client(), _job_id(job_id))
    if outcome == "missing":
        raise ApiError(404, f"no job {job_id!r}")
    if outcome != "requeued":
        raise ApiError(409, f"job {job_id} is {outcome}, not failed; only failed jobs can be requeued")
    return jsonify(id=job_id, outcome=outcome, status_url=url_for("api.job", job_id=job_id))


@blueprint.get("/failed")
def failed() -> Response:
    """The most recent failed jobs (newest first) with arguments and error, ``?queue=`` to pick one."""
    queue = request.args.get("queue")
    limit = request.args.get("limit", "20")
    if not limit.isdigit() or not 0 < int(limit) <= 500:
        raise ApiError(400, f"limit must be an integer from 1 to 500, got {limit!r}")
    letters = DeadLetters(_client()).jobs(_queue(queue) if queue else None, limit=int(limit))
    return jsonify(jobs=[asdict(letter) for letter in letters])


@blueprint.get("/queues")
def queues() -> Response:
    """Per queue: counts per state, workers, the oldest waiting job's age and last-minute rates."""
    return jsonify(queues=[q.to_json() for q in census.queue_stats(_client().redis)])


@blueprint.post("/queues/<name>/pause")
def pause(name: str) -> Response:
    actions.pause(_client(), _queue(name))
    return jsonify(queue=name, paused=True)


@blueprint.post("/queues/<name>/resume")
def resume(name: str) -> Response:
    actions.resume(_client(), _queue(name))
    return jsonify(queue=name, paused=False)


@blueprint.get("/stats")
def chart_stats() -> Response:
    """What the overview charts draw: per-minute rates, task durations, workers busy and total."""
    conn = _client().redis
    now = time.time()
    live = census.live_workers(conn)
    names = census.queue_names(conn, live)
    durations = duration_percentiles(conn, (0.5, 0.95))
    return jsonify(
        now=now,
        rates=stats.rate_series(conn, names, RATE_MINUTES, now),
        durations=[{"task": task, "p50_s": p50, "p95_s": p95} for task, (p50, p95) in sorted(durations.items())],
        workers={"busy": sum(w.busy for w in live), "total": len(live)},
    )


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())
