"""Fan-out and fan-in: ``send_newsletter`` sends one email job per recipient, then one summary job.

The emails form a chord with ``on_child_failure="ignore"``: a bad address fails its own job (with the
reason) and the summary still runs once, after every email job ended, with what was sent and what not.
"""

from __future__ import annotations

import logging
from typing import Any

from tasks.core.canvas import chord, group
from tasks.core.context import TaskContext
from tasks.core.groups import FlowResult, GroupResult
from tasks.core.result import AsyncResult
from tasks.core.task import task
from tasks.emails import send_email

__all__ = ["newsletter_chord", "newsletter_summary", "send_newsletter"]

log = logging.getLogger(__name__)


@task(queue="default")
def newsletter_summary(sent: list[Any], failures: list[dict[str, Any]], subject: str) -> dict[str, Any]:
    """The chord's callback: ``{"subject", "sent": n, "failed": [{"to", "error"}]}``, also logged."""
    failed = [{"to": _recipient(f), "error": f"{f['exc_type']}: {f['error']}"} for f in failures]
    log.info("newsletter %r: %d sent, %d failed", subject, len(sent), len(failed))
    return {"subject": subject, "sent": len(sent), "failed": failed}


def _recipient(failure: dict[str, Any]) -> str:
    args, kwargs = failure.get("args") or [], failure.get("kwargs") or {}
    return str(args[0] if args else kwargs.get("to", "?"))


def newsletter_chord(recipients: list[str], subject: str, html: str, flow_id: str | None = None) -> chord:
    """The newsletter as a canvas, not yet sent: apply it to get the summary's result handle.

    With ``flow_id`` the summary job is ``<flow_id>-summary`` and the email group ``<flow_id>-emails``.
    """
    emails = group((send_email.s(to, subject, html=html) for to in recipients),
                   group_id=f"{flow_id}-emails" if flow_id else None)  # fmt: skip
    summary = newsletter_summary.s(subject)
    if flow_id:
        summary = summary.set(job_id=f"{flow_id}-summary")
    return chord(emails, summary, on_child_failure="ignore")


@task(queue="default", bind=True)
def send_newsletter(self: TaskContext, recipients: list[str], subject: str, html: str) -> dict[str, Any]:
    """Send ``subject`` to every recipient, one ``send_email`` job each, and a summary at the end.

    Idempotent per job: if this job runs again (its worker died after sending the flow), it returns
    the flow it already sent instead of emailing everyone twice.

    Returns:
        ``{"callback_id", "group_id", "recipients"}``: the summary job's id (its result is the summary),
        the group of email jobs (``GroupResult.restore``), and how many there are.
    """
    flow_id = f"newsletter-{self.request.id}" if self.request.id else None
    if flow_id and AsyncResult(f"{flow_id}-summary").status:
        log.info("newsletter %r was already sent by an earlier run of job %s", subject, self.request.id)
        return {"callback_id": f"{flow_id}-summary", "group_id": f"{flow_id}-emails", "recipients": len(recipients)}
    summary = newsletter_chord(list(recipients), subject, html, flow_id).apply_async()
    emails = summary.parent
    assert isinstance(summary, FlowResult) and isinstance(emails, GroupResult)
    return {"callback_id": summary.id, "group_id": emails.id, "recipients": len(recipients)}
