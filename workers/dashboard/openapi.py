"""The OpenAPI 3.1 document of ``/api``; a test checks it against the app's routes both ways."""

from __future__ import annotations

from typing import Any

from tasks.core.validate import MAX_DELAY_S

__all__ = ["document"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT: dict[str, Any] = {"type": "object"}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or _OBJECT}}}


def _errors(*codes: int) -> dict[str, Any]:
    meanings = {
        400: "the body, an option or the arguments are wrong; the message says which",
        401: "no or wrong credentials",
        403: "a session request without the CSRF token",
        404: "no such task, job or queue",
        409: "the job is not in a state that allows this",
        413: "the encoded arguments pass the payload limit",
    }
    return {str(code): _answer(meanings[code], _ERROR) for code in (401, *codes)}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


_JOB_ID = _path_param("job_id", "the job id returned by POST /api/tasks/{name}")
_QUEUE = _path_param("name", "a queue name: letters, digits, '_', '.' or '-'")
_ENQUEUE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "args": {"type": "array", "description": "positional arguments (JSON values)"},
        "kwargs": {"type": "object", "description": "keyword arguments (JSON values)"},
        "options": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "queue": {"type": "string", "description": "run on this queue instead of the task's own"},
                "priority": {"type": "integer", "minimum": 0, "maximum": 9, "description": "lower runs sooner"},
                "countdown": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_DELAY_S,
                    "description": "seconds to wait (10 years at most)",
                },
                "unique_key": {"type": "string", "description": "at most one live job per key and task"},
            },
        },
    },
}
_JOB = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "task": {"type": ["string", "null"]},
        "queue": {"type": ["string", "null"]},
        "state": {"enum": ["PENDING", "SCHEDULED", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED"]},
        "status": {"type": "string", "description": "the raw RQ status"},
        "progress": {"type": ["object", "null"]},
        "args": {"type": "array"},
        "kwargs": {"type": "object"},
        "attempts": {"type": "integer"},
        "retries": {"type": "integer"},
        "created_at": {"type": ["string", "null"]},
        "enqueued_at": {"type": ["string", "null"]},
        "started_at": {"type": ["string", "null"]},
        "ended_at": {"type": ["string", "null"]},
        "result": {"description": "the return value after SUCCESS"},
        "error": {"type": ["object", "null"], "description": "type, message and traceback after FAILURE"},
    },
}


_CONTROL_QUERY = [
    {"name": "worker", "in": "query", "schema": {"type": "string"}, "description": "ask only this live worker"},
    {"name": "timeout", "in": "query", "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
     "description": "seconds to wait for answers (default 1)"},
]  # fmt: skip
_ANSWERS = {
    "type": "object",
    "properties": {
        "request": {"type": "string"},
        "answers": {"type": "object", "description": "worker name -> its answer"},
        "errors": {"type": "object", "description": "worker name -> why it refused"},
        "not_answering": {"type": "array", "items": {"type": "string"}, "description": "silent past the timeout"},
    },
}


def _control(summary: str, properties: dict[str, Any]) -> dict[str, Any]:
    common = {"worker": {"type": "string"}, "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}}
    body = {"type": "object", "properties": {**properties, **common}}
    return {
        "post": {
            "summary": summary,
            "requestBody": {"content": {"application/json": {"schema": body}}},
            "responses": {"200": _answer("answers per worker (revoke: outcome per id)"), **_errors(400)},
        }
    }


def _queue_action(verb: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"{verb.capitalize()} a queue (workers {'stop' if verb == 'pause' else 'start'} claiming)",
            "parameters": [_QUEUE],
            "responses": {"200": _answer(f"{verb}d"), **_errors(400)},
        }
    }


def document() -> dict[str, Any]:
    """The whole document, built fresh (callers may change it)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "taskrail dashboard API", "version": "1"},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "TASKRAIL_DASHBOARD_TOKEN"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "taskrail_session",
                    "description": "after POST /login; writes also need the X-CSRF-Token header",
                },
            },
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
        },
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/tasks": {"get": {"summary": "List registered tasks", "responses": {"200": _answer("the tasks")}}},
            "/api/tasks/{name}": {
                "post": {
                    "summary": "Enqueue a registered task",
                    "parameters": [_path_param("name", "the task's registered name")],
                    "requestBody": {"content": {"application/json": {"schema": _ENQUEUE_BODY}}},
                    "responses": {"202": _answer("enqueued: id, task, queue, status_url"), **_errors(400, 404, 413)},
                }
            },
            "/api/jobs/{job_id}": {
                "get": {
                    "summary": "A job's task, state, progress, attempts, times, and result or error",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _answer("the job", _JOB), **_errors(404)},
                }
            },
            "/api/jobs/{job_id}/revoke": {
                "post": {
                    "summary": "Cancel a waiting job or stop a running one",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _answer("outcome: canceled or stopping"), **_errors(404, 409)},
                }
            },
            "/api/jobs/{job_id}/requeue": {
                "post": {
                    "summary": "Put a failed job back on its queue",
                    "parameters": [_JOB_ID],
                    "responses": {"200": _answer("requeued"), **_errors(404, 409)},
                }
            },
            "/api/failed": {
                "get": {
                    "summary": "The most recent failed jobs with arguments, error and traceback",
                    "parameters": [
                        {"name": "queue", "in": "query", "schema": {"type": "string"}, "description": "one queue"},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                    ],
                    "responses": {"200": _answer("jobs, newest first"), **_errors(400)},
                }
            },
            "/api/queues": {
                "get": {
                    "summary": "Per queue: counts per state, workers, oldest job age, last-minute rates",
                    "responses": {"200": _answer("the queues")},
                }
            },
            "/api/queues/{name}/pause": _queue_action("pause"),
            "/api/queues/{name}/resume": _queue_action("resume"),
            "/api/stats": {
                "get": {
                    "summary": "Chart data: completed/failed per minute per queue, task p50/p95, workers busy/total",
                    "responses": {"200": _answer("the series")},
                }
            },
            "/api/inspect/{name}": {
                "get": {
                    "summary": "Ask live workers: active, reserved, scheduled, registered, stats or ping",
                    "parameters": [
                        _path_param("name", "active, reserved, scheduled, registered, stats or ping"),
                        *_CONTROL_QUERY,
                    ],
                    "responses": {
                        "200": _answer("answers per worker, errors, not_answering", _ANSWERS),
                        **_errors(400, 404),
                    },
                }
            },
            "/api/control/rate_limit": _control(
                "Set a task's rate limit in live workers until they restart",
                {"task": {"type": "string"}, "rate": {"type": "string"}},
            ),
            "/api/control/revoke": _control(
                "Cancel waiting jobs; with terminate, stop running ones too",
                {"ids": {"type": "array", "items": {"type": "string"}}, "terminate": {"type": "boolean"}},
            ),
            "/api/control/shutdown": _control("Stop live workers gracefully (running jobs finish)", {}),
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _answer("OpenAPI 3.1")}}},
        },
    }
