"""One queue's worker containers as every deploy target needs them, and the shutdown chain's margins.

The shutdown chain: a job's own deadline < ``shutdown_timeout_s`` (the worker drains, then
requeues what still runs) < the platform's grace period (``shutdown_timeout_s`` + preStop +
:data:`EXIT_MARGIN_S`), after which the platform kills the process.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from config.errors import ConfigError
from config.scaling import Autoscale, Profile, QueuePlan
from workers.supervisor.children import WorkerSpec as ChildSpec
from workers.supervisor.children import scheduling_environ

__all__ = ["EXIT_MARGIN_S", "PRESTOP_S", "Workload", "workloads"]

EXIT_MARGIN_S = 10  # after the drain deadline: requeue the unfinished jobs, unregister, exit
PRESTOP_S = 5  # the Kubernetes preStop pause before SIGTERM
DEFAULT_MEMORY_MB = 256  # a worker without max_memory_mb
SLUG = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class Workload:
    """One queue's worker containers, as both targets need them."""

    queue: str
    slug: str  # the queue in a DNS-safe form for service and object names
    replicas: int
    listens: tuple[str, ...]
    environment: Mapping[str, str]
    shutdown_timeout_s: float
    memory_request_mb: int
    memory_limit_mb: int
    autoscale: Autoscale | None

    @property
    def grace_s(self) -> int:
        """Seconds the platform waits after SIGTERM before it kills the worker."""
        return math.ceil(self.shutdown_timeout_s) + EXIT_MARGIN_S

    def command(self, hostname: str, *, once: bool = False) -> list[str]:
        """The worker's command line; ``hostname`` is how the platform spells this container's name.

        ``once``: run one job (or none, when the queues are empty) and exit 0, for a Job per job.
        """
        name = f"{hostname}.{self.queue}.0"
        single = ["--burst", "--max-jobs", "1"] if once else []
        return ["rq", "worker", "-w", "workers.Worker", "-c", "config.rq", "--name", name, *single, *self.listens]


def workloads(profile: Profile) -> tuple[Workload, ...]:
    """A spec per queue that has workers (or an autoscale range), in the profile's priority order.

    Raises:
        ConfigError: two queue names map to the same DNS-safe name.
    """
    specs: list[Workload] = []
    seen: dict[str, str] = {}
    for plan in profile.queues:
        if not plan.workers and not plan.autoscale:
            continue  # served only by other queues' workers (their `also`)
        slug = SLUG.sub("-", plan.name.lower()).strip("-")
        if slug in seen:
            raise ConfigError(
                f"{profile.source}: profile {profile.name!r}: queues {seen[slug]!r} and {plan.name!r} both become "
                f"{slug!r} in service and object names; rename one of them"
            )
        seen[slug] = plan.name
        specs.append(_spec(profile, plan, slug))
    return tuple(specs)


def _spec(profile: Profile, plan: QueuePlan, slug: str) -> Workload:
    memory = plan.max_memory_mb or DEFAULT_MEMORY_MB
    # The limit sits above the recycle threshold, so a growing worker recycles before the OOM killer
    # strikes; a forked job child adds its own memory on top.
    headroom = 1.5 if plan.isolation == "fork" else 1.25
    # The per-queue environment the supervisor gives its children, plus the profile-wide scheduling
    # settings (a queue's rate limit binds every worker that takes from it, so all get all).
    environment = {"TASKRAIL_PROFILE": profile.name, **ChildSpec.of(plan).environ(), **scheduling_environ(profile)}
    return Workload(
        queue=plan.name,
        slug=slug,
        replicas=plan.workers,
        listens=plan.listens,
        environment=environment,
        shutdown_timeout_s=plan.shutdown_timeout_s,
        memory_request_mb=max(64, memory // 2),
        memory_limit_mb=math.ceil(memory * headroom),
        autoscale=plan.autoscale,
    )
