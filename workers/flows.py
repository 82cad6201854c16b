"""Canvas support on the worker side: feeding flow members their parents' results.

Dependents are released by ``release_dependents`` (tasks/core/lua/includes/release_dependents.lua),
run by the settle step of every finished, failed or revoked job; ``resolve_arguments`` runs before a
flow member's task is called.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import redis

from config.errors import TaskError, TaskFailed
from tasks.core import keys
from tasks.core.groups import MemberOutcome, read_outcomes
from tasks.core.protocol import DATA_ERRORS, decode_data

__all__ = ["resolve_arguments"]


def resolve_arguments(
    conn: redis.Redis, job_id: str, flow: bytes, args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments a flow member really runs with: its parent's result (``mode`` "one"), or the list
    of its parents' results in input order (``mode`` "many"), put first unless the step is immutable.
    With ``on_child_failure="ignore"`` a callback gets ``(results, failures)`` first.

    Raises:
        TaskError: a parent's result is gone, or a parent failed where the policy forbids it.
    """
    spec = json.loads(flow)
    if spec.get("immutable"):
        return args, kwargs
    mode, policy = spec.get("mode", "one"), spec.get("policy", "fail")
    raw_ids = conn.hget(keys.JOB.format(job_id), "dependency_ids")
    parents: list[str] = json.loads(raw_ids) if raw_ids else []
    outcomes = read_outcomes(conn, parents, tracebacks=policy == "continue")
    for outcome in outcomes:
        if not outcome.ready:
            raise TaskError(
                f"parent {outcome.job_id} of flow step {job_id} is {outcome.status or 'gone (expired or deleted)'}, "
                "so its result cannot be read; raise result_ttl if flows run longer than it"
            )
    if mode == "one":
        only = outcomes[0]
        if not only.ok:
            raise TaskError(f"parent {only.job_id} of flow step {job_id} did not succeed: {only.error}")
        return [only.value, *args], kwargs
    if policy == "ignore":
        values = [o.value for o in outcomes if o.ok]
        return [values, _failures(conn, outcomes), *args], kwargs
    if policy == "continue":
        return [[o.value if o.ok else o.error for o in outcomes], *args], kwargs
    failed = next((o for o in outcomes if not o.ok), None)
    if failed is not None:
        raise TaskError(f"member {failed.job_id} of the group before {job_id} did not succeed: {failed.error}")
    return [[o.value for o in outcomes], *args], kwargs


def _failures(conn: redis.Redis, outcomes: list[MemberOutcome]) -> list[dict[str, Any]]:
    """What an ``ignore`` callback learns of each failed member: position, call, and error."""
    bad = [(index, o) for index, o in enumerate(outcomes) if not o.ok]
    if not bad:
        return []
    with conn.pipeline(transaction=False) as pipe:
        for _, outcome in bad:
            pipe.hget(keys.JOB.format(outcome.job_id), "data")
        datas = pipe.execute()
    failures = []
    for (index, outcome), data in zip(bad, datas, strict=True):
        call_args: list[Any] = []
        call_kwargs: dict[str, Any] = {}
        if data:
            with contextlib.suppress(*DATA_ERRORS):  # unreadable data: the failure is still reported
                _, call_args, call_kwargs = decode_data(data)
        error = outcome.error or TaskFailed(outcome.job_id, "TaskRevoked", "revoked", "")
        failures.append({
            "index": index, "job_id": outcome.job_id, "task": outcome.task, "args": call_args,
            "kwargs": call_kwargs, "exc_type": error.exc_type, "error": error.message,
        })  # fmt: skip
    return failures
