"""The supervisor's children: one ``rq worker -w workers.Worker`` process each, how to name, start and stop them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Worker as RQWorker

from config.scaling import Profile, QueuePlan
from config.settings import Isolation
from tasks.core import keys
from workers.exitcodes import RET_CONFIG, RET_ERROR, RET_GAVE_UP, RET_OK, RET_RECYCLE, RET_UNCLEAN
from workers.naming import free_name

__all__ = ["Child", "WorkerSpec", "describe_exit", "forget_dead_worker", "pick_name", "scheduling_environ", "spawn"]

PR_SET_PDEATHSIG = 1
EXIT_NAMES = {
    RET_OK: "RET_OK",
    RET_ERROR: "RET_ERROR",
    RET_CONFIG: "RET_CONFIG: bad settings or a task module that does not import",
    RET_RECYCLE: "RET_RECYCLE",
    RET_GAVE_UP: "RET_GAVE_UP",
    RET_UNCLEAN: "RET_UNCLEAN",
}


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process is started with; a changed spec after a reload means replace it."""

    listens: tuple[str, ...]
    concurrency: int
    isolation: Isolation
    max_jobs: int
    max_memory_mb: int
    shutdown_timeout_s: float
    scheduling: tuple[tuple[str, str], ...] = ()  # profile-wide: mode, weights, rate limits

    @classmethod
    def of(cls, plan: QueuePlan, profile: Profile | None = None) -> WorkerSpec:
        scheduling = tuple(sorted(scheduling_environ(profile).items())) if profile else ()
        return cls(plan.listens, plan.concurrency, plan.isolation, plan.max_jobs, plan.max_memory_mb,
                   plan.shutdown_timeout_s, scheduling)  # fmt: skip

    def environ(self) -> dict[str, str]:
        """The per-queue settings (and the profile's scheduling), as the worker reads them from its environment."""
        return {
            "TASKRAIL_CONCURRENCY": str(self.concurrency),
            "TASKRAIL_ISOLATION": self.isolation,
            "TASKRAIL_MAX_JOBS": str(self.max_jobs),
            "TASKRAIL_MAX_MEMORY_MB": str(self.max_memory_mb),
            "TASKRAIL_SHUTDOWN_TIMEOUT_S": f"{self.shutdown_timeout_s:g}",
            **dict(self.scheduling),
        }


def scheduling_environ(profile: Profile) -> dict[str, str]:
    """The profile-wide scheduling every worker gets: mode, queue weights and global rate limits."""
    env = {"TASKRAIL_PROFILE": profile.name, "TASKRAIL_MODE": profile.mode}
    if profile.mode == "weighted":
        env["TASKRAIL_QUEUE_WEIGHTS"] = ",".join(f"{p.name}={p.weight}" for p in profile.queues)
    rates = [f"{p.name}={p.rate_limit}" for p in profile.queues if p.rate_limit]
    if rates:
        env["TASKRAIL_QUEUE_RATE_LIMITS"] = ",".join(rates)
    return env


@dataclass
class Child:
    """One running (or stopping) worker process and what the supervisor knows about it."""

    queue: str
    index: int
    name: str
    spec: WorkerSpec
    proc: subprocess.Popen[bytes]
    started_at: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    stopping: bool = False
    kill_at: float | None = None
    killed: bool = False
    replaces: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, margin_s: float) -> None:
        """Ask for a graceful stop (SIGTERM: finish running jobs, requeue the rest at the deadline)."""
        if self.stopping:
            return
        self.stopping = True
        self.kill_at = time.monotonic() + self.spec.shutdown_timeout_s + margin_s
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """The last resort when a worker outlives its drain deadline."""
        self.killed = True
        self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited between the poll and the signal
                self.proc.send_signal(signum)


def describe_exit(code: int) -> str:
    """``killed by SIGKILL`` or ``exit 2, RET_CONFIG: ...``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    name = EXIT_NAMES.get(code)
    return f"exit {code}" + (f", {name}" if name else "")


def pick_name(conn: redis.Redis, node: str, queue: str, index: int) -> str:
    """``node.queue.index``, or with a short suffix while a dead worker of that name still holds state."""
    return free_name(conn, f"{node}.{queue}.{index}")


def spawn(name: str, queue: str, index: int, spec: WorkerSpec, base_env: Mapping[str, str]) -> Child:
    """Start ``rq worker -w workers.Worker -c config.rq --name NAME QUEUE...`` for one queue."""
    rq_bin = Path(sys.executable).with_name("rq")
    args = [str(rq_bin), "worker", "-w", "workers.Worker", "-c", "config.rq", "--name", name, *spec.listens]
    env = {**base_env, **spec.environ()}
    # Own process group: a Ctrl-C in the terminal reaches only the supervisor, which then stops each
    # worker once (a second signal would make a worker interrupt its running jobs).
    parent = os.getpid()
    proc = subprocess.Popen(args, env=env, process_group=0, preexec_fn=lambda: _die_with_parent(parent), close_fds=True)
    return Child(queue=queue, index=index, name=name, spec=spec, proc=proc)


def _die_with_parent(parent: int) -> None:
    """In the child before exec: get SIGTERM (a graceful drain) if the supervisor dies without stopping us."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the supervisor died before prctl took effect: drain right away
        os.kill(os.getpid(), signal.SIGTERM)


def forget_dead_worker(conn: redis.Redis, name: str) -> None:
    """Mark a killed worker dead in RQ's registry so ``rq info`` stops listing it.

    Its claimed jobs stay: the elected leader hands them back once its heartbeat expires.
    """
    try:
        worker = RQWorker.find_by_key(keys.RQ_WORKER.format(name), connection=conn)
        if worker is not None:
            worker.register_death()
    except (redis.RedisError, ValueError):
        pass
