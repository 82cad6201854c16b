"""``workers.Worker``: an RQ worker class that runs registered taskrail tasks fast and safely.

``rq worker -w workers.Worker -c config.rq QUEUE...`` runs it. Instead of RQ's fork per job and ~20
round trips, it claims a batch of jobs in one scripted round trip, runs them in this process (or in
threads, with ``concurrency``), and settles the finished batch together with the next claim. Every
structure RQ's tools read is kept; a maintenance thread adds heartbeats, recovery and scheduling.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import redis
from redis.client import Pipeline
from rq import Worker as RQWorker
from rq.command import parse_payload
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.suspension import is_suspended

from config.errors import ConfigError, TaskRevoked
from config.settings import Settings, load_settings
from tasks import signals
from tasks.core import keys
from tasks.core.protocol import epoch_text
from tasks.core.queues import waiting
from tasks.core.scripting import load_command, run_pipeline
from workers.aio import AsyncInterrupter, run_asyncio
from workers.callbacks import has_callback, has_success_callback, run_callbacks, run_success_callback
from workers.claim import DEQUEUE_STRATEGIES, claim_call, claim_reply
from workers.commands import handle_command, run_exception_handlers
from workers.exitcodes import RET_CONFIG, RET_RECYCLE
from workers.flows import resolve_arguments
from workers.interrupts import Interrupter, Slot
from workers.isolation import run_forked
from workers.maintenance import Maintenance
from workers.naming import take_free_name
from workers.periodic import check_periodic
from workers.podcost import start_pod_cost_reporter
from workers.ratelimit import policy_for
from workers.runner import (
    UNREACHABLE,
    ClaimedJob,
    HorseKilled,
    Interrupted,
    JobStopped,
    Outcome,
    job_error,
    operator_stop,
    rq_outcome,
    run_job,
)
from workers.sentry import capture_failure, init_sentry
from workers.waker import Flag

__all__ = ["Worker"]

log = logging.getLogger("taskrail.worker")

FLUSH_AFTER_S = 0.05  # settle finished jobs at least this often while a batch runs
TARGET_BATCH_S = 0.02  # claim about this much work at once, judged by recent job durations
WAIT_S = 1.0  # longest block on the wake-up list before checking schedules and stop flags


def _settings_or_exit() -> Settings:
    """The settings from the environment, or exit RET_CONFIG with the one-line reason (no traceback)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"taskrail: {exc}", file=sys.stderr)
        raise SystemExit(RET_CONFIG) from None


class Worker(RQWorker):
    """An RQ worker that claims in batches, runs in-process and hands back jobs of dead workers."""

    def __init__(self, queues: Any, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer  # taskrail jobs are JSON, never pickle
        super().__init__(queues, *args, **kwargs)
        self.settings = settings or _settings_or_exit()
        self.queue_list = [q.name for q in self.queues]
        self.interrupter = AsyncInterrupter() if self.settings.pool == "asyncio" else Interrupter()
        self.slots = [Slot(i) for i in range(self.settings.concurrency)]
        self.jobs_done = 0
        self.suspended = False  # set by maintenance while RQ's suspension key (`rq suspend`) exists
        self._strategy = "default"  # RQ's dequeue_strategy
        self._stop = Flag()  # set by request_stop, the signal handler: never a threading.Event (workers/waker.py)
        self._notices: deque[tuple[int, str]] = deque()  # what request_stop would log: maintenance logs it
        self._exit_code = 0
        self._avg_job_s = TARGET_BATCH_S  # unknown durations: claim one job at a time until measured
        self.shutdown_deadline: float | None = None  # monotonic; set by the first stop signal
        self._state = ""
        self._held: set[str] = set()  # ids this process has claimed and not yet settled
        self._held_lock = threading.Lock()
        self.rate_overrides: dict[str, str] = {}  # task -> tr_rate, set by taskrail control rate_limit
        self.started_at = time.time()
        self._claim = load_command("claim")  # tasks/core/lua/claim.lua
        self._finish = load_command("finish")

    # ---- the RQ entry point -------------------------------------------------------------------

    def work(
        self,
        burst: bool = False,
        logging_level: str | None = None,
        date_format: str = "",
        log_format: str = "",
        max_jobs: int | None = None,
        max_idle_time: int | None = None,
        with_scheduler: bool = False,
        dequeue_strategy: Any = None,
    ) -> bool:
        """Run until stopped (or, with ``burst``, until the queues are empty); True if any job ran.

        ``max_jobs`` (RQ's ``--max-jobs``) stops the worker with exit 0, as RQ; the supervisor's
        ``TASKRAIL_MAX_JOBS`` recycles it (RET_RECYCLE). RQ's ``date_format``, ``log_format``,
        ``max_idle_time`` and ``with_scheduler`` are accepted and not used: the elected leader
        schedules for everyone.
        """
        logging.basicConfig(level=(logging_level or self.settings.log_level).upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
        self._strategy = str(getattr(dequeue_strategy, "value", dequeue_strategy or "default"))
        if self._strategy not in DEQUEUE_STRATEGIES:
            raise ValueError(f"dequeue strategy {self._strategy!r} is not one of {', '.join(DEQUEUE_STRATEGIES)}")
        self._import_tasks()
        self._check_policy()
        init_sentry(self.settings)
        self.max_jobs = max_jobs or None
        self.burst = burst
        # Each call starts afresh, as RQ's does (its completed_jobs is local to work()): a program may call
        # work(burst=True, max_jobs=1) on one worker again and again.
        self.jobs_done, self._exit_code, self.shutdown_deadline = 0, 0, None
        self._stop.clear()
        self._install_signals()
        signals.send(signals.worker_init, self)  # Celery's worker signals (tasks/signals.py)
        self.register_birth()
        self.subscribe()  # RQ's pub/sub commands: handle_payload
        self.suspended = bool(is_suspended(self.connection))  # as RQ checks before its first dequeue
        maintenance = Maintenance(self)
        maintenance.beat()  # in the worker set with a live heartbeat before the first claim: never unrecoverable
        maintenance.start()
        pod_cost = start_pod_cost_reporter(lambda: sum(slot.active for slot in self.slots))  # busy pods last
        log.info("worker %s started on %s (concurrency %d)", self.name, ",".join(self.queue_list), len(self.slots))
        signals.send(signals.worker_ready, self)
        if threading.current_thread() is threading.main_thread():  # a worker process, not a thread of an app
            gc.freeze()  # what start-up built lives on: the collector no longer walks it as jobs come and go
        try:
            if self.settings.pool == "asyncio":
                run_asyncio(self)  # workers/aio.py: one event loop, one claim/settle stream
            elif len(self.slots) == 1:
                self._loop(self.slots[0])
            else:
                self._run_threads()
        finally:
            signals.send(signals.worker_shutdown, self)
            maintenance.stop()
            self.log_notices()
            if pod_cost is not None:
                pod_cost.stop()
            self.unsubscribe()
            self._register_exit()
        log.info("worker %s stopped after %d jobs", self.name, self.jobs_done)
        if self._exit_code:
            sys.exit(self._exit_code)
        return self.jobs_done > 0

    def register_birth(self) -> None:
        """RQ's, after :func:`~workers.naming.take_free_name`: a killed predecessor's name never blocks a start."""
        take_free_name(self)
        super().register_birth()

    def request_stop(self, signum: int | None = None, frame: Any = None) -> None:
        """First signal: stop taking jobs and drain until the deadline. Second: stop running jobs now.

        It is the SIGTERM and SIGINT handler, run on the main thread between any two bytecodes, maybe while
        that thread holds a lock: so it takes none and logs nothing (the logging module's own advice). The
        maintenance thread logs the request and, past the deadline, requeues the running jobs (0.1 s ticks).
        """
        if self._stop.is_set():
            self._notices.append((logging.WARNING, "second stop signal: interrupting running jobs now"))
            self.shutdown_deadline = time.monotonic()  # maintenance's next tick interrupts them
            return
        timeout_s = self.settings.shutdown_timeout_s
        self._notices.append((logging.INFO, f"stop requested: finishing running jobs (up to {timeout_s}s)"))
        self.shutdown_deadline = time.monotonic() + timeout_s
        self._stop.set()

    def log_notices(self) -> None:
        """Log what ``request_stop`` noted (on the maintenance thread, never in a signal handler)."""
        while self._notices:
            level, text = self._notices.popleft()
            log.log(level, "worker %s: %s", self.name, text)

    def recycle(self, reason: str) -> None:
        """Stop gracefully and exit with RET_RECYCLE so the supervisor starts a fresh process."""
        if not self._stop.is_set():
            log.info("worker %s recycling: %s", self.name, reason)
            self._exit_code = RET_RECYCLE
            self.request_stop()

    def interrupt_all(self) -> None:
        """Stop every running job; each goes back to the front of its queue."""
        for slot in self.slots:
            self.interrupter.stop(slot, Interrupted)

    def stop_job(self, job_id: str) -> bool:
        """Stop the running job ``job_id`` (RQ's stop-job command); False when no slot runs it."""
        return any([self.interrupter.stop(slot, JobStopped) for slot in self.slots if slot.job_id == job_id])

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """RQ's kill-horse: stop every running job (with ``isolation: fork``, kill its work-horse); they fail."""
        for slot in self.slots:
            self.interrupter.stop(slot, HorseKilled)

    def handle_payload(self, message: dict[str, Any]) -> None:
        """A command from RQ's pub/sub channel (rq.command); see workers/commands.py."""
        try:
            payload = parse_payload(message)
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            log.warning("worker %s: unreadable command %r ignored: %s", self.name, message.get("data"), exc)
            return
        if isinstance(payload, dict):
            handle_command(self, payload)

    def unsubscribe(self) -> None:
        """Leave RQ's command channel; the thread is told to stop first, so the unsubscribe reply ends
        its wait at once (RQ's order leaves it waiting out its 60 s read, and every exit a second)."""
        if self.pubsub is not None and self.pubsub_thread is not None:
            self.pubsub_thread.stop()
            self.pubsub.unsubscribe()
            self.pubsub_thread.join(timeout=1)
            self.pubsub.close()

    def get_current_job_id(self) -> str | None:
        """The id of a job this worker runs now (the first busy slot's; else that of an execution RQ's own
        methods prepared, as ``prepare_execution``), None when idle; read in memory."""
        running = self._running_id()
        return running if running is not None else super().get_current_job_id()

    def _running_id(self) -> str | None:
        return next((slot.job_id for slot in self.slots if slot.job_id), None)

    def get_current_job(self) -> Job | None:
        job_id = self._running_id()
        if job_id is None:
            return super().get_current_job()
        try:
            return self.job_class.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:
            return None

    def revoke_running(self, job_ids: set[str]) -> None:
        for slot in self.slots:
            if slot.job_id in job_ids:
                self.interrupter.stop(slot, TaskRevoked)

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

    @property
    def connection_timeout(self) -> int:
        """The socket timeout RQ gives the worker's connection: RQ sizes it for its own 405 s blocking dequeue; this
        worker blocks at most ``WAIT_S``, so a server gone silent (a cut link, a dead host) is noticed in seconds."""
        return int(WAIT_S) + 10

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---- the job loop -------------------------------------------------------------------------

    def _loop(self, slot: Slot) -> None:
        slot.thread_ident = threading.get_ident()
        conn = self.connection
        loop = asyncio.new_event_loop()
        local: deque[ClaimedJob] = deque()
        slot.reserved = local  # read by inspect reserved
        pending: list[Outcome] = []
        first_pending = 0.0
        try:
            while not self._stop.is_set():
                if not local and self.suspended:
                    self._exchange(conn, pending, 0)  # settle what ran; claim nothing
                    pending = []
                    if self.burst:
                        log.info("worker %s: suspended in burst mode, exiting", self.name)
                        break
                    self._wait_suspended()
                    continue
                if not local:
                    rows = self._exchange(conn, pending, self._batch_size())
                    pending = []
                    if not rows:
                        if self.burst and self._queues_empty(conn):
                            break
                        self._wait_for_work(conn)
                        continue
                    local.extend(rows)
                job = local.popleft()
                if not pending:
                    first_pending = time.monotonic()
                pending.append(self._run(slot, job, loop))
                if time.monotonic() - first_pending > FLUSH_AFTER_S:
                    self._exchange(conn, pending, 0)
                    pending = []
        finally:
            # Claimed but never started: back to the front of their queues, in their order.
            pending += [Outcome(job, "requeue", exc_type="requeued") for job in reversed(local)]
            if pending:
                self._exchange(conn, pending, 0, retry_until_stopped=False)
            loop.close()

    def _run(self, slot: Slot, job: ClaimedJob, loop: asyncio.AbstractEventLoop) -> Outcome:
        slot.job, slot.started_at, slot.job_id = job, time.time(), job.id  # job first: inspect reads by job_id
        started = slot.started_at
        try:
            limit = job.timeout if job.timeout and job.timeout > 0 else None
            slot.deadline = time.monotonic() + limit if limit else None
            self.interrupter.arm(slot, limit)
            if self.settings.isolation == "fork":
                run = functools.partial(run_job, job, self._write_progress, None, self._resolve_flow, self.connection)
                outcome = run_forked(job, run, self.settings.max_stalled)
            else:
                outcome = run_job(job, self._write_progress, loop, self._resolve_flow, self.connection)
        except (Interrupted, TaskRevoked) as exc:  # a stop that landed just outside the task's code
            outcome = Outcome(job, "requeue" if isinstance(exc, Interrupted) else "revoked", ttl=job.failure_ttl)
        except (JobStopped, HorseKilled) as stop:
            outcome = operator_stop(job, "", stop, 0.0)
        except Exception as exc:  # any other per-job step that broke: this job fails, the worker carries on
            log.exception("job %s could not be run", job.id)
            outcome = job_error(job, exc)
        finally:
            self.interrupter.disarm(slot)
            slot.job_id = None
        if job.callbacks and has_success_callback(outcome):  # RQ's on_success, before the success is recorded
            outcome = run_success_callback(self.connection, outcome, self._callback_limit)
        return self._ran(outcome, started)

    def _ran(self, outcome: Outcome, started: float) -> Outcome:
        """Account for a job that ran (or could not): statistics, failure report, max_jobs; the outcome to settle."""
        job = outcome.job
        if job.callbacks:  # RQ's callbacks, Retry or Repeat: only the jobs that have them pay for them
            outcome = rq_outcome(outcome)
        outcome.started_at, outcome.ended_at = started, time.time()
        self.jobs_done += 1
        self._count(outcome)
        # Slow to trust short jobs, quick to notice a long one: a long job shrinks the next claim at once.
        self._avg_job_s = max(outcome.duration_s, 0.9 * self._avg_job_s + 0.1 * outcome.duration_s)
        if outcome.kind == "fail":
            try:
                self.report_failure(job, outcome)
            except Exception:  # a failing report hook must not take the worker down
                log.exception("reporting the failure of job %s failed", job.id)
        if self.max_jobs and self.jobs_done >= self.max_jobs:
            if not self._stop.is_set():
                log.info("worker %s: finished executing %d jobs, quitting", self.name, self.jobs_done)
                self.request_stop()
        elif self.settings.max_jobs and self.jobs_done >= self.settings.max_jobs:
            self.recycle(f"reached max_jobs={self.settings.max_jobs}")
        return outcome

    def _count(self, outcome: Outcome) -> None:
        """RQ's worker statistics, in memory (finish.lua counts them in the worker's hash)."""
        if outcome.kind in ("ok", "rq_repeat"):
            self.successful_job_count += 1
        elif outcome.kind not in ("requeue", "revoked"):  # fail, stopped and every retry, as RQ counts them
            self.failed_job_count += 1
        if outcome.kind not in ("requeue", "revoked"):
            self.total_working_time += outcome.duration_s

    def _run_threads(self) -> None:
        threads = [threading.Thread(target=self._loop, args=(slot,), daemon=True) for slot in self.slots]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.2)  # short joins keep signal handling responsive

    def _batch_size(self) -> int:
        if self._stop.is_set():
            return 0
        fitting = int(TARGET_BATCH_S / max(self._avg_job_s, 1e-6))
        limits = [n - self.jobs_done for n in (self.max_jobs, self.settings.max_jobs) if n]
        if limits:  # claim no job that max_jobs would hand back unrun
            fitting = min(fitting, *limits)
        return max(1, min(self.settings.max_batch, fitting))

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
                score = now + max(60, self.settings.heartbeat_ttl_s * 10)
                call = claim_call(self.name, self.queue_list, claim, now, now_text, score, maxlen, self.settings,
                                  self._strategy, self.rate_overrides)  # fmt: skip
                self._claim.queue(pipe, *call)

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
            s = self.settings
            rows, self._next_slot_s = claim_reply(replies[-1])  # seconds until a rate-limited job may start
            claimed = [ClaimedJob.from_reply(row, s.result_ttl_s, s.failure_ttl_s) for row in rows]
            with self._held_lock:
                self._held.update(job.id for job in claimed)
        # RQ's callbacks, once settled (and the new claims held); a batch without any costs one look per job
        if any(outcome.job.callbacks for outcome in settled) and any(has_callback(o) for o in settled):
            run_callbacks(conn, settled, self._callback_limit)
        return claimed

    @contextlib.contextmanager
    def _callback_limit(self, seconds: int) -> Iterator[None]:
        """A callback's timeout, enforced like a job's on this thread's slot (TaskTimeout inside it)."""
        ident = threading.get_ident()
        slot = next((s for s in self.slots if s.thread_ident == ident), None)
        if slot is None or seconds <= 0:
            yield
            return
        slot.deadline = time.monotonic() + seconds
        self.interrupter.arm(slot, seconds)
        try:
            yield
        finally:
            self.interrupter.disarm(slot)

    def _wait_for_work(self, conn: redis.Redis) -> None:
        try:
            with conn.pipeline(transaction=False) as pipe:
                if self._state != "idle" and not any(slot.active for slot in self.slots):
                    self._state = "idle"
                    pipe.hset(self.key, "state", "idle")
                pipe.blpop(
                    [keys.WAKE.format(q) for q in self.queue_list],
                    timeout=min(WAIT_S, getattr(self, "_next_slot_s", 0.0) or WAIT_S),
                )
                pipe.execute()
        except UNREACHABLE as exc:
            log.warning("Redis unreachable while waiting (%s)", exc)
            time.sleep(0.5)

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

    def _resolve_flow(
        self, job: ClaimedJob, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        return resolve_arguments(self.connection, job.id, job.flow, args, kwargs)

    def _write_progress(self, job_id: str, percent: float, note: str | None) -> None:
        job_key = keys.JOB.format(job_id)
        queue = self.connection.hget(job_key, "origin")
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hset(job_key, mapping={"tr_progress": percent, "tr_progress_note": note or ""})
            if queue:
                pipe.xadd(keys.EVENTS.format(queue.decode()), {"event": "progress", "job": job_id, "percent": percent},
                          maxlen=self.settings.events_maxlen, approximate=True)  # fmt: skip
            pipe.execute()

    def report_failure(self, job: ClaimedJob, outcome: Outcome) -> None:
        """Hook for error reporting (Sentry); logs the failure."""
        log.warning("job %s (%s) failed: %s: %s", job.id, outcome.task, outcome.exc_type, outcome.exc_message)
        capture_failure(job, outcome)

    # ---- start and end ------------------------------------------------------------------------

    def _import_tasks(self) -> None:
        for module in self.settings.imports:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                log.error("cannot import task module %r listed in TASKRAIL_IMPORTS: %s", module, exc)
                raise SystemExit(RET_CONFIG) from exc

    def _check_policy(self) -> None:
        try:
            policy_for(self.settings)  # queue weights and rate limits: fail now, not at the first claim
            check_periodic(self.settings.periodic_file)  # an unreadable file; bad entries are only skipped
        except ConfigError as exc:  # the taskrail command's one paragraph and exit code, not a traceback
            print(f"taskrail: {exc}", file=sys.stderr)
            raise SystemExit(RET_CONFIG) from None

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a worker on a thread (workers/inprocess.py): stopped by request_stop, limits by async exception
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        main_slot = self.slots[0] if len(self.slots) == 1 else None
        self.interrupter.install(main_slot)

    def _register_exit(self) -> None:
        """Leave the worker set, unless claims are still held: then only the heartbeat goes, and the
        leader's recovery hands those jobs back (it only looks at members of the set)."""
        claims = keys.CLAIMS.format(self.name)
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.delete(keys.HEARTBEAT.format(self.name))
                pipe.hlen(claims)
                if self._state == "busy":  # RQ's hash outlives the worker a minute: its jobs are done
                    pipe.hset(self.key, "state", "idle")
                held = pipe.execute()[1]
            if held:
                log.warning("worker %s stops holding %d claims; the leader will hand them back", self.name, held)
            else:
                self.connection.srem(keys.WORKERS, self.name)
            self.register_death()
        except redis.RedisError as exc:
            log.warning("could not unregister worker %s: %s", self.name, exc)
