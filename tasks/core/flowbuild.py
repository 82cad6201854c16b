"""Turn a canvas into RQ jobs and write them in a few pipelined round trips.

A ``Plan`` collects every job of a flow (encoded, nothing written) with its parents; ``write`` sends
them with the flow_enqueue command (tasks/core/lua/flow_enqueue.lua), whole chunks of jobs per call:
waiting jobs first, then the jobs that can run at once, so no parent can finish before its
dependents are there to count it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from redis.client import Pipeline

from config.errors import ConfigError
from tasks.core import keys, validate
from tasks.core.celery_calls import WORKER_OPTIONS, call_fields
from tasks.core.protocol import JobSpec, encode_job, reencode
from tasks.core.scripting import load_command, run_pipeline

if TYPE_CHECKING:
    from tasks.core.client import Client
    from tasks.core.task import Task

__all__ = ["FLOW_OPTIONS", "POLICIES", "Mode", "Plan", "PlannedJob", "Policy"]

# Both go into a job's ``tr_flow`` field, which the flow scripts read.
Mode = Literal["", "one", "many"]  # how a call takes its parents' results: not at all, one value, a list
Policy = Literal["fail", "ignore", "continue"]  # what a chord's callback does when a member failed
POLICIES: tuple[Policy, ...] = get_args(Policy)
FLOW_OPTIONS = ("queue", "priority", "countdown", "job_id")
ARGS_PER_CALL = 20_000  # script arguments per flow_enqueue call (about 2,000 ordinary jobs)
OWN_FIELDS = ("data", "description", "dependency_ids", "dependency_id")  # the rest is often shared
CALLS_PER_TRIP = 10  # flow_enqueue calls per pipelined round trip
FLOW_KEY_TTL_S = 30 * 24 * 3600  # a flow that never ends (a member lost for good) does not stay forever


class Call(Protocol):
    """What the plan needs of a signature."""

    @property
    def task(self) -> Task[Any, Any]: ...
    @property
    def args(self) -> tuple[Any, ...]: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...
    @property
    def options(self) -> Mapping[str, Any]: ...
    @property
    def immutable(self) -> bool: ...


@dataclass
class PlannedJob:
    """One job of a flow, encoded but not written; ``state`` is queued, scheduled or deferred."""

    job_id: str
    queue: str
    state: str
    run_at: float
    task: str
    parents: list[str]
    fields: dict[str, str | int] = field(default_factory=dict)

    def argv(self, previous_shared: dict[str, str | int] | None) -> tuple[list[Any], dict[str, str | int]]:
        """This job's record for flow_enqueue, and its shared fields (the next record may reuse them)."""
        shared = {k: v for k, v in self.fields.items() if k not in OWN_FIELDS}
        own: list[Any] = []
        for name in OWN_FIELDS:
            if name in self.fields:
                own += [name, self.fields[name]]
        priority = self.fields.get("tr_priority", -1)
        record = [
            self.job_id,
            self.queue,
            self.state,
            self.run_at,
            priority,
            self.task,
            len(self.parents),
            *self.parents,
        ]
        if shared == previous_shared:
            record.append(-1)
        else:
            flat: list[Any] = []
            for name, value in shared.items():
                flat += [name, value]
            record += [len(flat), *flat]
        return [*record, len(own), *own], shared


class Plan:
    """Every job of one flow, in the order they were added (parents before their dependents)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.jobs: list[PlannedJob] = []
        self.groups: dict[str, list[str]] = {}  # group id -> its members' result job ids, in order
        self.flow_id = uuid.uuid4().hex
        self._by_id: dict[str, PlannedJob] = {}
        self._templates: dict[tuple[str, str, int | None], JobSpec] = {}

    def add(self, sig: Call, parents: Sequence[str], mode: Mode, policy: Policy) -> str:
        """Encode one call; ``mode`` is how it takes its parents' results: "" (not), "one" or "many".

        Raises:
            ConfigError: arguments that do not fit the task (counting the results it will receive), bad options.
            EnqueueError: arguments that are not JSON or too large.
        """
        received = 0 if sig.immutable or not mode else (2 if mode == "many" and policy == "ignore" else 1)
        spec, countdown = self._encode(sig, received, waits=bool(parents))
        if spec.job_id in self._by_id:
            raise ConfigError(f"{sig.task.name}: job_id {spec.job_id!r} is used twice in one flow")
        fields = spec.fields
        if mode:
            flow: dict[str, Any] = {"mode": mode, "policy": policy, "immutable": sig.immutable}
            if "tr_flow" in fields:  # the call's Celery options (link, link_error, ...)
                flow.update(json.loads(str(fields["tr_flow"])))
            fields.update(tr_flow=json.dumps(flow), tr_policy=policy, dependency_ids=json.dumps(list(parents)))
            if parents:
                fields["dependency_id"] = parents[0]
            if policy != "fail":
                fields["allow_dependency_failures"] = 1
        state = "deferred" if parents else ("scheduled" if spec.run_at else "queued")
        if parents:
            fields.update(status=state, enqueued_at="")
            if countdown:
                fields["tr_countdown_s"] = str(countdown)
        self._keep(fields)
        job = PlannedJob(spec.job_id, spec.queue, state, spec.run_at, sig.task.name, list(parents), fields)
        self.jobs.append(job)
        self._by_id[job.job_id] = job
        return job.job_id

    def _encode(self, sig: Call, received: int, waits: bool) -> tuple[JobSpec, float]:
        """The call's job fields (checked against the task) and its countdown; a waiting job's
        countdown starts when it is released, so it is not scheduled now."""
        task, opts, settings = sig.task, sig.options, self.client.settings
        task.check_arguments((None,) * received + tuple(sig.args), dict(sig.kwargs))
        queue = task.queue_for(opts.get("queue"), settings)
        priority = validate.priority(opts.get("priority", task.options.priority), task.name)
        countdown = validate.countdown(opts.get("countdown"), task.name)
        run_at = time.time() + countdown if countdown and not waits else 0.0
        celery = {name: opts[name] for name in WORKER_OPTIONS if opts.get(name) is not None}
        # Calls of one task with the same options share every field but their data: encode the first
        # in full and copy it for the others (as Task.enqueue_many does).
        plain = not run_at and not opts.get("job_id") and not celery
        same = (task.name, queue, priority) if plain else None
        template = self._templates.get(same) if same else None
        if template is not None:
            spec = reencode(template, task.name, tuple(sig.args), dict(sig.kwargs), settings.max_payload_bytes)
        else:
            spec = encode_job(
                task.name, sig.args, dict(sig.kwargs), queue=queue, max_payload_bytes=settings.max_payload_bytes,
                job_id=opts.get("job_id"), run_at=run_at, time_limit=task.options.time_limit,
                result_ttl=task.options.result_ttl if task.options.result_ttl is not None else settings.result_ttl_s,
                failure_ttl=settings.failure_ttl_s, priority=priority,
            )  # fmt: skip
            if same:
                self._templates[same] = replace(spec, fields=dict(spec.fields))
        # Rate and concurrency limits (read by CLAIM). A limit_key that is a received result is not
        # known yet, so such calls share the key of a None value.
        spec.fields.update(
            task.options.limit_fields(task.call_signature, (None,) * received + tuple(sig.args), dict(sig.kwargs))
        )
        if celery or task.options.expires is not None:
            spec.fields.update(call_fields(task.name, celery, task.options, time.time()))
        return spec, countdown

    def _keep(self, fields: dict[str, str | int]) -> None:
        """Keep this member's result until the whole flow ended, then its own TTL (see release_dependents.lua)."""
        fields["tr_keep_s"] = fields["result_ttl"]
        fields["result_ttl"] = -1
        fields["tr_flow_id"] = self.flow_id

    def write(self) -> int:
        """Write every job; returns the number of round trips used."""
        conn = self.client.redis
        script = load_command("flow_enqueue")
        ordered = [j for j in self.jobs if j.state == "deferred"] + [j for j in self.jobs if j.state != "deferred"]
        calls: list[list[Any]] = []
        current: list[Any] = []
        shared: dict[str, str | int] | None = None
        for job in ordered:
            record, shared = job.argv(shared if current else None)
            if current and len(current) + len(record) > ARGS_PER_CALL:
                calls.append(current)
                record, shared = job.argv(None)  # a new call does not know the previous shared fields
                current = []
            current += record
        if current:
            calls.append(current)
        head = [self.client.settings.events_maxlen, time.time()]
        trips = 0
        for start in range(0, len(calls), CALLS_PER_TRIP):

            def build(pipe: Pipeline, start: int = start) -> None:
                if start == 0:
                    if len(calls) > 1:  # a server that lost the script (restart) must not cost a trip per call
                        pipe.script_load(script.source)
                    self._save_flow(pipe)
                    self._save_groups(pipe)
                for argv in calls[start : start + CALLS_PER_TRIP]:
                    script.queue(pipe, [], [*head, *argv])

            run_pipeline(conn, build)
            trips += 1
        return trips

    def _save_flow(self, pipe: Any) -> None:
        """How many members have yet to end, and who they are: the last to end releases every result."""
        pipe.set(keys.FLOW.format(self.flow_id), len(self.jobs), ex=FLOW_KEY_TTL_S)
        ids = [job.job_id for job in self.jobs]
        for start in range(0, len(ids), 5000):
            pipe.sadd(keys.FLOW_MEMBERS.format(self.flow_id), *ids[start : start + 5000])
        pipe.expire(keys.FLOW_MEMBERS.format(self.flow_id), FLOW_KEY_TTL_S)

    def _save_groups(self, pipe: Any) -> None:
        """Member ids of every group, for ``GroupResult.restore``; kept as long as a failure is."""
        ttl = max(self.client.settings.failure_ttl_s, self.client.settings.result_ttl_s)
        for group_id, ids in self.groups.items():
            key = keys.GROUP.format(group_id)
            pipe.delete(key)
            for start in range(0, len(ids), 5000):
                pipe.rpush(key, *ids[start : start + 5000])
            pipe.expire(key, ttl)
