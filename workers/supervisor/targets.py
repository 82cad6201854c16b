"""How many workers each queue should have: pinned by ``taskrail scale``, else autoscaled, else the profile's count."""

from __future__ import annotations

import time
from collections.abc import Mapping

from config.scaling import Profile, QueuePlan
from workers.supervisor.autoscale import Autoscaler, Decision, QueueLoad

__all__ = ["Targets"]


class Targets:
    """The target count per queue of one supervisor, and every change to it as a log line."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.autoscaler = Autoscaler()
        self.overrides: dict[str, int] = {}
        self.scale_version = -1  # the version of ``taskrail:scale`` last applied
        self._reset_autoscale(profile)

    def of(self, plan: QueuePlan) -> int:
        if plan.name in self.overrides:
            return self.overrides[plan.name]
        return self.autoscaler.target(plan.name) if plan.autoscale else plan.workers

    def pinned(self, queue: str) -> bool:
        return queue in self.overrides

    def set_profile(self, profile: Profile) -> list[str]:
        """Switch to a (re-read) profile; return the count changes, like ``email 1 -> 3``."""
        before = {p.name: self.of(p) for p in self.profile.queues}
        self.profile = profile
        self._reset_autoscale(profile)
        return [f"{p.name} {before.get(p.name, 0)} -> {self.of(p)}" for p in profile.queues
                if before.get(p.name, 0) != self.of(p)]  # fmt: skip

    def pin(self, version: int, counts: Mapping[str, int]) -> list[str]:
        """Apply the overrides of scale version ``version``; return one log line per change."""
        plans = {p.name: p for p in self.profile.queues}
        counts = {q: n for q, n in counts.items() if q in plans}
        lines = []
        for plan in self.profile.queues:
            old, new = self.of(plan), counts.get(plan.name)
            if new is not None and new != old:
                lines.append(f"scale {plan.name}: {old} -> {new} workers (pinned by taskrail scale)")
            elif new is None and plan.name in self.overrides:
                del self.overrides[plan.name]
                if plan.autoscale:  # carry on from the pinned count, within the range
                    start = max(plan.autoscale.min, min(old, plan.autoscale.max))
                    self.autoscaler.reset(plan.name, start, time.monotonic())
                lines.append(f"scale {plan.name}: unpinned, back to {self.of(plan)} workers from the profile")
        self.overrides = counts
        self.scale_version = version
        return lines

    def autoscaled(self) -> list[QueuePlan]:
        """The queues autoscale decides for now (pinned ones wait)."""
        return [p for p in self.profile.queues if p.autoscale and p.name not in self.overrides]

    def observe(self, plan: QueuePlan, load: QueueLoad) -> Decision | None:
        assert plan.autoscale is not None
        return self.autoscaler.observe(plan.name, plan.autoscale, load, time.monotonic())

    def _reset_autoscale(self, profile: Profile) -> None:
        now = time.monotonic()
        for plan in profile.queues:
            if plan.autoscale:
                self.autoscaler.reset(plan.name, plan.workers, now)
