"""The dashboard's own pages: the live overview at ``/`` and one job at ``/jobs/<id>``.

Pages are Jinja templates (autoescaped) plus static scripts; the charts fetch ``/api/queues`` and
``/api/stats`` every few seconds and draw SVG with ``static/charts.js``, so nothing is loaded from
another site and the CSP allows no inline script.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, render_template

from tasks.core.client import Client
from tasks.core.result import AsyncResult
from workers.dashboard.api import describe_job
from workers.dashboard.auth import csrf_token
from workers.dashboard.rqmount import JOB_ID, PREFIX

__all__ = ["REFRESH_MS", "blueprint"]

REFRESH_MS = 3000

blueprint = Blueprint("overview", __name__)


@blueprint.get("/")
def index() -> str:
    return render_template("overview.html", csrf=csrf_token(), refresh_ms=REFRESH_MS, rq_prefix=PREFIX)


@blueprint.get("/jobs/<job_id>")
def job_page(job_id: str) -> str:
    """One job: task, state, arguments, result or error, all escaped by the template."""
    if not JOB_ID.fullmatch(job_id):
        abort(404)
    client: Client = current_app.extensions["taskrail.client"]
    info = describe_job(AsyncResult(job_id, client=client))
    if info is None:
        abort(404)
    shown = {
        "args": json.dumps(info["args"], indent=1, ensure_ascii=False),
        "kwargs": json.dumps(info["kwargs"], indent=1, ensure_ascii=False),
        "result": json.dumps(info["result"], indent=2, ensure_ascii=False) if info["state"] == "SUCCESS" else None,
    }
    return render_template("job.html", csrf=csrf_token(), job=info, shown=shown, rq_prefix=PREFIX)
