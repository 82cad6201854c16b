"""The claim/settle exchange of ``workers.Worker`` with the server: one scripted round trip settles the
finished jobs (finish.lua, fenced by their claims) and claims the next ones (claim.lua), plus the waits
between: on the queues' wake-up lists, and while RQ's suspension (`rq suspend`) lasts.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from redis.client import Pipeline

from tasks.core import keys
from tasks.core.protocol import epoch_text
from tasks.core.queues import waiting
from tasks.core.scripting import load_command, run_pipeline
from workers.callbacks import has_callback, run_callbacks
from workers.claim import claim_call, claim_reply
from workers.commands import run_exception_handlers
from workers.runner import UNREACHABLE, ClaimedJob, Outcome
from workers.stopping import StoppableWorker

__all__ = ["ExchangingWorker"]

log = logging.getLogger("taskrail.worker")

WAIT_S = 1.0  # longest block on the wake-up list before checking schedules and stop flags


class ExchangingWorker(StoppableWorker):
    """Claims and settles jobs in batches, each batch one round trip; ``workers.Worker`` runs them."""

    def __init__(self, queues: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(queues, *args, **kwargs)
        self.queue_list = [q.name for q in self.queues]
        self._strategy = "default"  # RQ's dequeue_strategy
        self._state = ""
        self._held: set[str] = set()  # ids this process has claimed and not yet settled
        self._held_lock = threading.Lock()
        # task -> tr_rate, set by taskrail control rate_limit (workers/control.py), which also writes them where
        # claim.lua reads them (keys.RATE_OVERRIDES): claims do not send them
        self.rate_overrides: dict[str, str] = {}
        self._claim = load_command("claim")  # tasks/core/lua/claim.lua
        self._finish = load_command("finish")

    @property
    def connection_timeout(self) -> int:
        """The socket timeout RQ gives the worker's connection: RQ sizes it for its own 405 s blocking dequeue; this
        worker blocks at most ``WAIT_S``, so a server gone silent (a cut link, a dead host) is noticed in seconds."""
        return int(WAIT_S) + 10

    def held_ids(self) -> set[str]:
        """Ids of the jobs this process claimed and has not settled (queued locally, running, or done)."""
        with self._held_lock:
            return set(self._held)

    def release_orphans(self, orphans: dict[str, str]) -> None:
        """Hand back claims this process does not hold (a claim whose reply was lost): front of the queue."""
        log.warning("requeueing %d claimed jobs this worker never received: %s", len(orphans), ", ".join(orphans))
        outcomes = [Outcome(ClaimedJob.orphan(job_id, queue), "requeue", exc_type="requeued")
                    for job_id, queue in orphans.items()]  # fmt: skip
        self._exchange(self.connection, outcomes, 0, retry_until_stopped=False)

    def _exchange(self, conn: redis.Redis, outcomes: list[Outcome], claim: int,
                  retry_until_stopped: bool = True) -> list[ClaimedJob]:  # fmt: skip
        """One round trip: settle ``outcomes`` and claim up to ``claim`` new jobs."""
        if not outcomes and not claim:
            return []
        delay = 0.1
        while True:
            try:
                return self._exchange_once(conn, outcomes, claim)
            except UNREACHABLE as exc:
                if not retry_until_stopped and self._stop.is_set():
                    log.error(
                        "cannot settle %d jobs, Redis unreachable (%s); they will be recovered", len(outcomes), exc
                    )
                    return []
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                if claim and self._stop.is_set():
                    claim = 0

    def _exchange_once(self, conn: redis.Redis, outcomes: list[Outcome], claim: int) -> list[ClaimedJob]:
        now = time.time()
        now_text = epoch_text(now)
        maxlen = self.settings.events_maxlen

        def build(pipe: Pipeline) -> None:
            if outcomes:
                args: list[Any] = [self.name, now, now_text, maxlen, int(now // 60)]
                for outcome in outcomes:
                    args += outcome.record()
                self._finish.queue(pipe, [keys.CLAIMS.format(self.name), self.key], args)
            if claim and self._state != "busy":
                pipe.hset(self.key, "state", "busy")  # RQ's worker state, in the same round trip
            if claim:
                self._queue_claim(pipe, claim, now, now_text)

        replies = run_pipeline(conn, build)
        with self._held_lock:
            self._held.difference_update(outcome.job.id for outcome in outcomes)
        refused = {r.decode() for r in replies[0][1:]} if outcomes else set()  # settles finish.lua fenced off
        if refused:
            log.warning("results of jobs %s not recorded: this worker no longer held their claims (it looked "
                        "dead and they were recovered); raise TASKRAIL_HEARTBEAT_TTL_S if tasks hold the GIL long",
                        ", ".join(sorted(refused)))  # fmt: skip
        settled = [o for o in outcomes if o.job.id not in refused] if refused else outcomes
        if self._exc_handlers or self.disable_default_exception_handler:
            run_exception_handlers(conn, self._exc_handlers, settled, self.serializer,
                                   self.disable_default_exception_handler)  # fmt: skip
        claimed: list[ClaimedJob] = []
        if claim:
            self._state = "busy"
            claimed = self._claimed(replies[-1])
        # RQ's callbacks, once settled (and the new claims held); a batch without any costs one look per job
        if any(outcome.job.callbacks for outcome in settled) and any(has_callback(o) for o in settled):
            run_callbacks(conn, settled, self._callback_limit)
        return claimed

    def _queue_claim(self, pipe: Pipeline, count: int, now: float, now_text: str, waited_s: float = 0.0) -> None:
        """Queue claim.lua for up to ``count`` jobs on ``pipe``; ``waited_s``: how long it may run after ``now``
        (behind a blocking wait), which its started registry score counts from."""
        score = now + waited_s + max(60, self.settings.heartbeat_ttl_s * 10)
        call = claim_call(self.name, self.queue_list, count, now, now_text, score, self.settings.events_maxlen,
                          self.settings, self._strategy)  # fmt: skip
        self._claim.queue(pipe, *call)

    def _claimed(self, reply: Any) -> list[ClaimedJob]:
        """The jobs a claim's reply gives this process, held from now on until settled."""
        s = self.settings
        rows, self._next_slot_s = claim_reply(reply)  # seconds until a rate-limited job may start
        claimed = [ClaimedJob.from_reply(row, s.result_ttl_s, s.failure_ttl_s) for row in rows]
        if claimed:
            with self._held_lock:
                self._held.update(job.id for job in claimed)
        return claimed

    def _wait_for_work(self, conn: redis.Redis, claim: int = 0) -> list[ClaimedJob]:
        """Block on the wake-up lists (at most ``WAIT_S``), then claim up to ``claim`` jobs in the same round trip:
        the server runs the claim as soon as the wait ends, so a job enqueued to an idle worker starts one round
        trip after its enqueue, not two. claim.lua marks RQ's worker state busy when it claims for an idle worker."""
        now = time.time()

        def build(pipe: Pipeline) -> None:
            if self._state != "idle" and not any(slot.active for slot in self.slots):
                self._state = "idle"
                pipe.hset(self.key, "state", "idle")
            pipe.blpop(
                [keys.WAKE.format(q) for q in self.queue_list],
                timeout=min(WAIT_S, getattr(self, "_next_slot_s", 0.0) or WAIT_S),
            )
            if claim:
                # now_text '': the claim writes the server's time as the jobs' start, not the wait's
                self._queue_claim(pipe, claim, now, "", waited_s=WAIT_S)

        try:
            replies = run_pipeline(conn, build)
        except UNREACHABLE as exc:
            log.warning("Redis unreachable while waiting (%s)", exc)
            time.sleep(0.5)
            return []
        claimed = self._claimed(replies[-1]) if claim else []
        if claimed:
            self._state = "busy"
        return claimed

    def _wait_suspended(self) -> None:
        if self._state != "suspended":
            log.info("worker %s: suspended, run `rq resume` to resume", self.name)
            self._state = "suspended"
            try:
                self.connection.hset(self.key, "state", "suspended")  # RQ's WorkerStatus.SUSPENDED
            except UNREACHABLE as exc:
                log.warning("Redis unreachable while suspended (%s)", exc)
        self._stop.wait(0.2)

    def _queues_empty(self, conn: redis.Redis) -> bool:
        return not any(waiting(conn, self.queue_list).values())
