"""Fan-out and fan-in: ``send_newsletter`` sends one email job per recipient, then one summary job.

The emails form a chord with ``on_child_failure="ignore"``: a bad address fails its own job (with the
reason) and the summary still runs once, after every email job ended, with what was sent and what not.
"""

from __future__ import annotations

import logging
from typing import Any

from tasks.canvas import chord
from tasks.emails import send_email
from tasks.groups import FlowResult, GroupResult
from tasks.task import task

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


def newsletter_chord(recipients: list[str], subject: str, html: str) -> chord:
    """The newsletter as a canvas, not yet sent: apply it to get the summary's result handle."""
    emails = [send_email.s(to, subject, html=html) for to in recipients]
    return chord(emails, newsletter_summary.s(subject), on_child_failure="ignore")


@task(queue="default")
def send_newsletter(recipients: list[str], subject: str, html: str) -> dict[str, Any]:
    """Send ``subject`` to every recipient, one ``send_email`` job each, and a summary at the end.

    Returns:
        ``{"callback_id", "group_id", "recipients"}``: the summary job's id (its result is the summary),
        the group of email jobs, and how many there are.
    """
    summary = newsletter_chord(list(recipients), subject, html).apply_async()
    emails = summary.parent
    assert isinstance(summary, FlowResult) and isinstance(emails, GroupResult)
    return {"callback_id": summary.id, "group_id": emails.id, "recipients": len(recipients)}
