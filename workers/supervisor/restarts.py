"""Restart intensity, as in Erlang/OTP: at most ``max_restarts`` crashes within ``max_seconds`` per queue."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["BACKOFF_MAX_S", "RestartIntensity"]

BACKOFF_FIRST_S = 0.5  # the second crash in the window waits this long, then it doubles
BACKOFF_MAX_S = 30.0


@dataclass
class RestartIntensity:
    """Counts one queue's crashes in a sliding window and says how long to wait before the next start."""

    max_restarts: int
    max_seconds: float
    crashes: deque[float] = field(default_factory=deque)
    not_before: float = 0.0

    def record(self, now: float) -> float:
        """Note a crash at ``now``; return the back-off before its replacement starts."""
        self.crashes.append(now)
        self._forget(now)
        recent = len(self.crashes)
        delay = 0.0 if recent <= 1 else min(BACKOFF_FIRST_S * 2 ** (recent - 2), BACKOFF_MAX_S)
        self.not_before = now + delay
        return delay

    def exceeded(self, now: float) -> bool:
        """More than ``max_restarts`` crashes within the last ``max_seconds``: give up."""
        self._forget(now)
        return len(self.crashes) > self.max_restarts

    def recent(self, now: float) -> int:
        self._forget(now)
        return len(self.crashes)

    def _forget(self, now: float) -> None:
        while self.crashes and self.crashes[0] < now - self.max_seconds:
            self.crashes.popleft()
