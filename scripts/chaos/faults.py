"""The faults of a chaos run, on one thread: kill a worker, stop one past its heartbeat, drop replies,
restart the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.chaos.proxy import Proxy

__all__ = ["FaultPlan", "Faults"]

log = logging.getLogger("taskrail.chaos")

TICK_S = 0.05


@dataclass(frozen=True)
class FaultPlan:
    """How often each fault strikes; 0 turns one off."""

    kill_every_s: float = 3.0
    stop_every_s: float = 20.0
    stop_for_s: float = 5.0  # longer than the workers' heartbeat TTL: the stopped worker counts as dead
    drops_per_s: float = 3.0
    restart_at: tuple[float, ...] = (1 / 3, 2 / 3)  # fractions of the jobs done when the server restarts


class Faults:
    """Runs the plan against the supervisor's workers, the proxy and (through ``restart``) the server.

    ``progress`` tells the fraction of jobs done (for the restart points); ``restart`` restarts the
    server, or is None when the server is not ours to restart.
    """

    def __init__(self, plan: FaultPlan, supervisor_pid: int, proxy: Proxy, progress: Callable[[], float],
                 restart: Callable[[], None] | None, seed: int) -> None:  # fmt: skip
        self.plan = plan
        self.supervisor_pid = supervisor_pid
        self.proxy = proxy
        self.progress = progress
        self.restart = restart
        self.rng = random.Random(seed)
        self.kills = 0
        self.stops = 0
        self.restarts = 0
        self.errors: list[str] = []
        self._stopped_pid: int | None = None
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-faults", daemon=True)

    @property
    def dropped(self) -> int:
        return self.proxy.dropped

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """End the faults and let a stopped worker go on."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self._resume()

    def workers(self) -> list[int]:
        """The pids of the supervisor's worker processes now."""
        return children(self.supervisor_pid)

    def _run(self) -> None:
        plan, start = self.plan, time.monotonic()
        next_kill = start + plan.kill_every_s if plan.kill_every_s else float("inf")
        next_stop = start + plan.stop_every_s if plan.stop_every_s else float("inf")
        next_drop = start + 1 / plan.drops_per_s if plan.drops_per_s else float("inf")
        resume_at = float("inf")
        restarts_left = list(plan.restart_at) if self.restart else []
        while not self._halt.wait(TICK_S):
            now = time.monotonic()
            if now >= next_drop:
                self.proxy.drop_next()
                next_drop = now + self.rng.expovariate(plan.drops_per_s)
            if now >= resume_at:
                self._resume()
                resume_at = float("inf")
            if now >= next_kill:
                self._kill()
                next_kill = now + plan.kill_every_s
            if now >= next_stop and self._stopped_pid is None:
                if self._stop():
                    resume_at = now + plan.stop_for_s
                next_stop = now + plan.stop_every_s
            if restarts_left and self.progress() >= restarts_left[0]:
                restarts_left.pop(0)
                self._restart()

    def _kill(self) -> None:
        running = [pid for pid in self.workers() if pid != self._stopped_pid]
        if running:
            pid = self.rng.choice(running)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.kills += 1
                log.debug("killed worker %d", pid)

    def _stop(self) -> bool:
        running = self.workers()
        if not running:
            return False
        pid = self.rng.choice(running)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return False
        self._stopped_pid = pid
        self.stops += 1
        log.debug("stopped worker %d", pid)
        return True

    def _resume(self) -> None:
        if self._stopped_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._stopped_pid, signal.SIGCONT)
            self._stopped_pid = None

    def _restart(self) -> None:
        assert self.restart is not None
        try:
            self.restart()
            self.restarts += 1
        except Exception as exc:  # reported in the verdict; the run goes on
            self.errors.append(f"server restart failed: {exc}")
            log.exception("server restart failed")


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (2nd field) is in parentheses and may hold spaces: split after it.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z" and int(fields[1]) == pid:  # a zombie is dead already
            found.append(int(stat.parent.name))
    return found
