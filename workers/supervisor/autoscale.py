"""Autoscale decisions: grow fast when the backlog or the oldest wait passes its trigger, shrink slowly when quiet.

Growth jumps straight to the count the backlog asks for (at most every ``UP_INTERVAL_S``, so new
workers get time to start). Shrinking removes one idle worker at a time, and only after the queue
was quiet for a whole ``cooldown_s`` since the last change: the quiet threshold sits at half the
growth trigger, so the count does not flap around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.scaling import Autoscale

__all__ = ["UP_INTERVAL_S", "Autoscaler", "Decision", "QueueLoad"]

UP_INTERVAL_S = 2.0
QUIET_FRACTION = 0.5


@dataclass(frozen=True)
class QueueLoad:
    """What the supervisor measured for one queue."""

    waiting: int
    oldest_wait_s: float
    idle_workers: int


@dataclass(frozen=True)
class Decision:
    """A new worker count and the reason, as it goes into the log."""

    queue: str
    old: int
    new: int
    reason: str

    def __str__(self) -> str:
        return f"autoscale {self.queue}: {self.old} -> {self.new} workers ({self.reason})"


@dataclass
class _State:
    target: int
    last_change: float
    last_up: float
    quiet_since: float | None = None


class Autoscaler:
    """Keeps each autoscaled queue's target count and changes it as the load says."""

    def __init__(self) -> None:
        self._states: dict[str, _State] = {}

    def reset(self, queue: str, target: int, now: float) -> None:
        """Start (again) from ``target``, as after a start or a profile reload."""
        self._states[queue] = _State(target, now, now - UP_INTERVAL_S)

    def target(self, queue: str) -> int:
        return self._states[queue].target

    def observe(self, queue: str, rule: Autoscale, load: QueueLoad, now: float) -> Decision | None:
        """Feed one measurement; return a decision when the target changes."""
        state = self._states[queue]
        current = state.target
        need, reason = _needed(rule, load, current)
        if need > current and current < rule.max:
            state.quiet_since = None
            if now - state.last_up < UP_INTERVAL_S:
                return None
            return self._change(queue, state, min(need, rule.max), reason, now, up=True)
        if current < rule.min:
            return self._change(queue, state, rule.min, f"below min {rule.min}", now, up=True)
        if current > rule.max:
            return self._change(queue, state, rule.max, f"above max {rule.max}", now, up=False)
        if current <= rule.min or not _quiet(rule, load, current):
            state.quiet_since = None
            return None
        if state.quiet_since is None:
            state.quiet_since = now
        waited = min(now - state.quiet_since, now - state.last_change)
        if waited < rule.cooldown_s or load.idle_workers == 0:
            return None
        reason = (
            f"quiet for {rule.cooldown_s:g}s: {load.waiting} waiting, oldest {load.oldest_wait_s:.1f}s, "
            f"{load.idle_workers} idle"
        )
        return self._change(queue, state, current - 1, reason, now, up=False)

    def _change(self, queue: str, state: _State, new: int, reason: str, now: float, *, up: bool) -> Decision:
        decision = Decision(queue, state.target, new, reason)
        state.target = new
        state.last_change = now
        state.quiet_since = None
        if up:
            state.last_up = now
        return decision


def _needed(rule: Autoscale, load: QueueLoad, current: int) -> tuple[int, str]:
    need, reasons = current, []
    per = rule.backlog_per_worker
    if per and load.waiting > per * current:
        need = max(need, math.ceil(load.waiting / per))
        reasons.append(f"{load.waiting} waiting > {per} per worker x {current}")
    if rule.max_wait_s is not None and load.oldest_wait_s > rule.max_wait_s:
        need = max(need, current + 1)
        reasons.append(f"oldest job waited {load.oldest_wait_s:.1f}s > max_wait_s {rule.max_wait_s:g}")
    return need, "; ".join(reasons)


def _quiet(rule: Autoscale, load: QueueLoad, current: int) -> bool:
    """Well below the growth trigger even with one worker fewer."""
    per = rule.backlog_per_worker
    if per and load.waiting > QUIET_FRACTION * per * (current - 1):
        return False
    return not (rule.max_wait_s is not None and load.oldest_wait_s > QUIET_FRACTION * rule.max_wait_s)
