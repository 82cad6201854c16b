"""The dashboard's writes besides enqueueing: requeue failed jobs, pause and resume queues.

Requeueing goes through :class:`tasks.core.deadletters.DeadLetters` (one atomic script that puts the job
back with its error cleared and wakes the workers), pausing through :mod:`tasks.core.queues` (which also
records an event and wakes workers on resume); this module adds the answers the API needs (no such
job, or a job that is not failed).
"""

from __future__ import annotations

from tasks.core import keys, queues
from tasks.core.client import Client
from tasks.core.deadletters import DeadLetters

__all__ = ["pause", "requeue_failed", "requeue_job", "resume"]


def requeue_job(client: Client, job_id: str) -> str:
    """Requeue one failed job; returns ``requeued``, ``missing`` or the job's (other) RQ status."""
    status = client.redis.hget(keys.JOB.format(job_id), "status")
    if status is None:
        return "missing"
    if status != b"failed":
        return str(status.decode())
    # False only when it stopped being a dead letter meanwhile (expired, or requeued by someone else).
    return "requeued" if DeadLetters(client).requeue(job_id) else "missing"


def requeue_failed(client: Client, queue: str) -> int:
    """Requeue every failed job of ``queue``; returns how many went back."""
    return DeadLetters(client).requeue_all(queue)


def pause(client: Client, queue: str) -> bool:
    """Workers stop claiming from ``queue`` (running jobs finish); True if it was running."""
    return queues.pause(queue, client)


def resume(client: Client, queue: str) -> bool:
    """Workers claim from ``queue`` again; True if it was paused."""
    return queues.resume(queue, client)
