"""The supervisor: keeps each queue's planned number of ``rq worker`` processes alive, OTP style.

One loop, woken by a child's exit (SIGCHLD), a signal or a 0.1 s tick, owns every decision: reap
exited children, replace crashed ones (with a growing back-off, within the restart intensity),
start or gracefully stop workers to match the target counts, and once a second read scale
overrides, autoscale and publish its state to Redis. Signal handlers only queue the signal.

Exactly one scheduler runs because every worker takes part in one leader election through Redis
(``workers.maintenance``); the supervisor starts no separate ``rq scheduler``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import redis

from config.connection import redis_url
from config.embedded import process_alive
from config.errors import ConfigError, SupervisorError
from config.scaling import Profile, QueuePlan, load_profile
from config.settings import Settings
from tasks.core import keys
from tasks.core.queues import waiting
from workers.census import oldest_wait_s
from workers.exitcodes import RET_ERROR, RET_GAVE_UP, RET_OK, RET_RECYCLE, RET_UNCLEAN
from workers.supervisor import coordination
from workers.supervisor.autoscale import QueueLoad
from workers.supervisor.children import Child, WorkerSpec, describe_exit, forget_dead_worker, pick_name, spawn
from workers.supervisor.restarts import RestartIntensity
from workers.supervisor.status import count_interrupted
from workers.supervisor.targets import Targets
from workers.waker import Waker

__all__ = ["Supervisor"]

log = logging.getLogger("taskrail.supervisor")

TICK_S = 0.1
POLL_S = 1.0  # scale overrides, autoscale and published state
DRAIN_MARGIN_S = 5.0  # beyond a worker's shutdown_timeout_s before it is SIGKILLed


class Supervisor:
    """Runs one profile's workers on this machine (``node``) until a signal or the restart intensity stops it."""

    def __init__(self, settings: Settings, profile: Profile, conn: redis.Redis, *, node: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.targets = Targets(profile)
        self.conn = conn
        self.node = node or socket.gethostname()
        self.env = {**(os.environ if environ is None else environ), "REDIS_URL": redis_url(settings)}
        self.children: list[Child] = []
        self.intensity: dict[str, RestartIntensity] = {}
        self.pending: dict[str, deque[str]] = {}  # queue -> crashed workers awaiting their replacement
        self.draining = False
        self.exit_code = RET_OK
        self.failure: str | None = None
        self.unclean: list[str] = []
        self.drained: set[str] = set()
        self._drain_ms = 0
        self._signals: deque[int] = deque()
        self._wake = Waker()
        self._next_poll = 0.0
        self._started_wall = time.time()

    @property
    def profile(self) -> Profile:
        return self.targets.profile

    def target(self, plan: QueuePlan) -> int:
        """Pinned by ``taskrail scale``, else the autoscaler's count, else the profile's."""
        return self.targets.of(plan)

    # ---- the loop -----------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until drained; return RET_OK, RET_UNCLEAN or RET_GAVE_UP."""
        self._claim_node()
        self._install_signals()
        self._apply_profile(self.profile)
        plan = ", ".join(f"{p.name}={p.workers}" for p in self.profile.queues)
        log.info("supervisor %s (pid %d) started with profile %r from %s: %s", self.node, os.getpid(),
                 self.profile.name, self.profile.source, plan)  # fmt: skip
        try:
            while not (self.draining and not self.children):
                self._wake.wait(TICK_S)
                self._handle_signals()
                self._reap()
                self._enforce_kill_deadlines()
                if time.monotonic() >= self._next_poll:
                    self._next_poll = time.monotonic() + POLL_S
                    self._poll()
                if not self.draining:
                    self._reconcile()
        except Exception:
            log.exception("supervisor failed; stopping every worker gracefully")
            self._drain_after_error()
            raise
        finally:
            self._safe(coordination.clear_state, self.conn, self.node)
        return self._result()

    def _drain_after_error(self) -> None:
        """A bug in the loop must not orphan workers nor kill their running jobs."""
        if not self.draining:
            self.drain("supervisor error", RET_ERROR)
        while self.children:
            self._wake.wait(TICK_S)
            self._reap()
            self._enforce_kill_deadlines()

    def _poll(self) -> None:
        if not self.draining:
            self._safe(self._read_overrides)
            self._safe(self._autoscale)
        self._safe(coordination.publish_state, self.conn, self.node, self.state())

    def _safe(self, fn: Any, *args: Any) -> Any:
        """Redis trouble must not stop supervision: the workers keep running and retry on their own."""
        try:
            return fn(*args)
        except redis.RedisError as exc:
            log.warning("Redis unreachable (%s); supervising the processes anyway", exc)
            return None

    # ---- signals ------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGCHLD, lambda *_: self._wake.set())

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)
        self._wake.set()

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                self.reload(f"{name} received")
            elif not self.draining:
                self.drain(f"{name} received", RET_OK)
            else:
                log.warning("%s again: interrupting running jobs now; they go back to the front of their queues", name)
                for child in self.children:
                    child.signal(signal.SIGTERM)

    # ---- children -----------------------------------------------------------------------------

    def _reap(self) -> None:
        for child in list(self.children):
            code = child.proc.poll()
            if code is not None:
                self.children.remove(child)
                self._on_exit(child, code)

    def _on_exit(self, child: Child, code: int) -> None:
        ran = time.monotonic() - child.started_at
        if child.stopping:
            if self.draining and child.killed:
                self.unclean.append(f"worker {child.name} was killed at its drain deadline")
            elif self.draining and code != RET_OK:
                self.unclean.append(f"worker {child.name} stopped with {describe_exit(code)}")
            level = logging.INFO if code == RET_OK else logging.WARNING
            log.log(level, "worker %s stopped (%s) after %.1fs", child.name, describe_exit(code), ran)
            return
        if code == RET_RECYCLE:
            log.info("worker %s recycled (passed max_jobs or max_memory_mb) after %.1fs; replacing it", child.name, ran)
            self.pending[child.queue].append(child.name)
            return
        if code != RET_OK:
            self._safe(forget_dead_worker, self.conn, child.name)
        self._on_crash(child, code, ran)

    def _on_crash(self, child: Child, code: int, ran: float) -> None:
        now = time.monotonic()
        limits = self.intensity[child.queue]
        delay = limits.record(now)
        crashes = limits.recent(now)
        if limits.exceeded(now):
            self.failure = (
                f"queue {child.queue!r}: {crashes} crashes within {limits.max_seconds:g}s, more than "
                f"max_restarts={limits.max_restarts}; last: worker {child.name} {describe_exit(code)} after {ran:.1f}s"
            )
            log.error("giving up: %s", self.failure)
            self.drain("restart intensity passed", RET_GAVE_UP)
            return
        what = "crashed" if code != RET_OK else "exited on its own"
        log.warning("worker %s %s (%s) after %.1fs; replacing it %s (crash %d of %d allowed in %gs)",
                    child.name, what, describe_exit(code), ran, f"in {delay:.1f}s" if delay else "now", crashes,
                    limits.max_restarts, limits.max_seconds)  # fmt: skip
        self.pending[child.queue].append(child.name)

    def _reconcile(self) -> None:
        plans = {p.name: p for p in self.profile.queues}
        for child in self.children:
            plan = plans.get(child.queue)
            if not child.stopping and (plan is None or child.spec != WorkerSpec.of(plan, self.profile)):
                self._stop(child, "its queue's settings changed in the profile")
        now = time.monotonic()
        for plan in self.profile.queues:
            active = [c for c in self.children if c.queue == plan.name and not c.stopping]
            target = self.target(plan)
            if len(active) < target and now >= self.intensity[plan.name].not_before:
                for _ in range(target - len(active)):
                    self._start(plan)
            elif len(active) > target:
                for child in self._idle_first(active)[: len(active) - target]:
                    self._stop(child, "scaled down")

    def _start(self, plan: QueuePlan) -> None:
        used = {c.index for c in self.children if c.queue == plan.name}
        index = next(i for i in range(1, len(used) + 2) if i not in used)
        name = self._safe(pick_name, self.conn, self.node, plan.name, index)
        name = name or f"{self.node}.{plan.name}.{index}-{os.urandom(2).hex()}"
        child = spawn(name, plan.name, index, WorkerSpec.of(plan, self.profile), self.env)
        pending = self.pending[plan.name]
        child.replaces = pending.popleft() if pending else None
        self.children.append(child)
        log.info("worker %s started (pid %d) on %s%s", name, child.pid, ",".join(plan.listens),
                 f", replacing {child.replaces}" if child.replaces else "")  # fmt: skip

    def _stop(self, child: Child, why: str) -> None:
        log.info("worker %s stopping (%s): running jobs finish first, up to %gs", child.name, why,
                 child.spec.shutdown_timeout_s)  # fmt: skip
        self.drained.add(child.name)
        child.stop(DRAIN_MARGIN_S + 0.1 * child.spec.shutdown_timeout_s)

    def _enforce_kill_deadlines(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.kill_at is not None and now >= child.kill_at and not child.killed:
                log.error("worker %s still runs past its shutdown deadline; killing it (the leader recovers its "
                          "jobs)", child.name)  # fmt: skip
                child.kill()

    def _idle_first(self, children: list[Child]) -> list[Child]:
        """Idle workers first (their stop interrupts nothing), newest first among equals."""
        busy = self._safe(self._busy, children) or {}
        return sorted(children, key=lambda c: (busy.get(c.name, False), -c.started_at))

    def _busy(self, children: list[Child]) -> dict[str, bool]:
        with self.conn.pipeline(transaction=False) as pipe:
            for child in children:
                pipe.hlen(keys.CLAIMS.format(child.name))
            return {c.name: n > 0 for c, n in zip(children, pipe.execute(), strict=True)}

    # ---- targets: profile, reload, scale overrides, autoscale -----------------------------------

    def _apply_profile(self, profile: Profile) -> None:
        for plan in profile.queues:
            old = self.intensity.get(plan.name)
            self.intensity[plan.name] = RestartIntensity(plan.max_restarts, plan.max_seconds)
            if old:
                self.intensity[plan.name].crashes.extend(old.crashes)
            self.pending.setdefault(plan.name, deque())

    def reload(self, why: str) -> None:
        """Re-read the profile from its file; a bad file is logged and the running profile kept."""
        try:
            new = load_profile(self.profile.source, self.profile.name)
        except ConfigError as exc:
            log.error("%s: profile not reloaded, the running one stays: %s", why, exc)
            return
        self._apply_profile(new)
        changes = self.targets.set_profile(new)
        pinned = [p.name for p in new.queues if self.targets.pinned(p.name)]
        log.info("%s: reloaded profile %r from %s: %s%s", why, new.name, new.source, ", ".join(changes) or
                 "no count changed", f" (pinned by taskrail scale: {', '.join(pinned)})" if pinned else "")  # fmt: skip

    def _read_overrides(self) -> None:
        if coordination.read_scale_version(self.conn) != self.targets.scale_version:
            for line in self.targets.pin(*coordination.read_overrides(self.conn, self.node)):
                log.info("%s", line)

    def _autoscale(self) -> None:
        for plan in self.targets.autoscaled():
            active = [c for c in self.children if c.queue == plan.name and not c.stopping]
            busy = self._busy(active)
            load = QueueLoad(
                waiting=waiting(self.conn, [plan.name])[plan.name],
                oldest_wait_s=oldest_wait_s(self.conn, plan.name) or 0.0,
                idle_workers=sum(1 for c in active if not busy[c.name]),
            )
            decision = self.targets.observe(plan, load)
            if decision:
                log.info("%s", decision)

    # ---- draining -----------------------------------------------------------------------------

    def drain(self, why: str, code: int) -> None:
        """Stop every worker gracefully; the loop ends when the last one exited."""
        self.draining = True
        self.exit_code = code
        self._drain_ms = int(time.time() * 1000)
        longest = max((c.spec.shutdown_timeout_s for c in self.children), default=0)
        log.info("draining %d workers (%s): running jobs finish, up to %gs", len(self.children), why, longest)
        for child in self.children:
            self._stop(child, why)

    def _result(self) -> int:
        if self.exit_code == RET_GAVE_UP:
            return RET_GAVE_UP
        queues = {q for p in self.profile.queues for q in p.listens}
        interrupted = self._safe(count_interrupted, self.conn, queues, self._drain_ms, self.drained) or 0
        if interrupted:
            self.unclean.append(f"{interrupted} running jobs passed shutdown_timeout_s and were requeued")
        if self.unclean:
            log.warning("drain finished, not clean: %s", "; ".join(self.unclean))
            return RET_UNCLEAN
        log.info("drain finished cleanly: every running job completed")
        return RET_OK

    # ---- identity and state -------------------------------------------------------------------

    def _claim_node(self) -> None:
        for other in self._safe(coordination.read_supervisors, self.conn) or []:
            if (
                other.get("node") == self.node
                and other.get("host") == socket.gethostname()
                and process_alive(other["pid"])
            ):
                raise SupervisorError(
                    f"another supervisor already runs as node {self.node!r} (pid {other['pid']}); stop it, "
                    "or give this one its own name with --node"
                )

    def state(self) -> dict[str, Any]:
        """What ``taskrail status`` and ``taskrail scale`` read about this supervisor."""
        now = time.monotonic()
        queues = {
            p.name: {"target": self.target(p), "running": sum(1 for c in self.children if c.queue == p.name
                     and not c.stopping), "pinned": self.targets.pinned(p.name),
                     "autoscale": [p.autoscale.min, p.autoscale.max] if p.autoscale else None}
            for p in self.profile.queues
        }  # fmt: skip
        workers = [{"name": c.name, "queue": c.queue, "pid": c.pid, "uptime_s": round(now - c.started_at, 1),
                    "state": "stopping" if c.stopping else "running"} for c in self.children]  # fmt: skip
        return {"node": self.node, "host": socket.gethostname(), "pid": os.getpid(), "profile": self.profile.name,
                "started_at": self._started_wall, "scale_version": self.targets.scale_version, "draining": self.draining,
                "queues": queues, "workers": workers}  # fmt: skip
