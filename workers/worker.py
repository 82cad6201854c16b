"""``workers.Worker``: an RQ worker class that runs registered taskrail tasks fast and safely.

``rq worker -w workers.Worker -c config.rq QUEUE...`` runs it. Instead of RQ's fork per job and ~20
round trips, it claims a batch of jobs in one scripted round trip, runs them in this process (or in
threads, with ``concurrency``), and settles the finished batch together with the next claim. Every
structure RQ's tools read is kept; a maintenance thread adds heartbeats, recovery and scheduling.

Its layers, each a module: the state and stop requests (workers/stopping.py), the claim/settle exchange
(workers/exchange.py), the inline run loop (workers/inline.py), the threads mode's shared stream
(workers/threads.py) and the asyncio mode (workers/aio.py); this one starts and ends ``work()``.
"""

from __future__ import annotations

import gc
import importlib
import logging
import signal
import sys
import threading
from typing import Any

import redis
from rq.command import parse_payload
from rq.suspension import is_suspended

from config.errors import ConfigError
from tasks import signals
from tasks.core import keys
from workers.aio import run_asyncio
from workers.claim import DEQUEUE_STRATEGIES
from workers.commands import handle_command
from workers.exitcodes import RET_CONFIG
from workers.inline import InlineWorker
from workers.maintenance import Maintenance
from workers.naming import take_free_name
from workers.periodic import check_periodic
from workers.podcost import start_pod_cost_reporter
from workers.ratelimit import policy_for
from workers.sentry import init_sentry
from workers.threads import SharedStream

__all__ = ["Worker"]

log = logging.getLogger("taskrail.worker")


class Worker(InlineWorker):
    """An RQ worker that claims in batches, runs in-process and hands back jobs of dead workers."""

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
                SharedStream(self).run()  # workers/threads.py: slot threads, one claim/settle stream
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
        # a predecessor's runtime rate limits (taskrail control rate_limit) are not this process's, as in Celery
        self.connection.delete(keys.RATE_OVERRIDES.format(self.name))

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
                pipe.delete(keys.HEARTBEAT.format(self.name), keys.RATE_OVERRIDES.format(self.name))
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
