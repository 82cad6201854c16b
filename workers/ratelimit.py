"""Global rate limits and concurrency caps, enforced inside the claim command on the server's clock.

Rate limits are exact sliding windows: a sorted set per limited thing (task, task and key, queue,
worker) holds one member per start in the last period, scored by the server's time. A job may
start when every window it belongs to has room. Concurrency caps are sorted sets of the job ids
holding a slot; the settle step of the worker's finish (and the leader's reap, for dead workers)
releases the slot, so a crashed worker never holds one for longer than its heartbeat lives.

The script side is tasks/core/lua/includes/limits.lua (used by claim.lua) and
includes/release_slot.lua. Key names (tasks/core/keys.py):

- ``taskrail:rl:t:<task>[:<key>]``   starts of a task (per limit key) in its window
- ``taskrail:rl:q:<queue>``          starts from a queue (profile ``rate_limit``)
- ``taskrail:rl:w:<worker>``         starts by one worker process (``TASKRAIL_WORKER_RATE_LIMIT``)
- ``taskrail:cc:<task>[:<key>]``     job ids running under a concurrency cap
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from config.errors import ConfigError
from config.settings import Settings
from tasks.core.options import RateLimit, parse_rate_limit

__all__ = ["ClaimPolicy", "policy_for"]


@dataclass(frozen=True)
class ClaimPolicy:
    """How one worker orders its queues and which queue and worker limits it applies."""

    weighted: bool
    weights: dict[str, int]
    queue_limits: dict[str, tuple[int, float]]
    worker_limit: tuple[int, float] | None

    def queue_args(self, queues: list[str]) -> list[str | int | float]:
        """Per queue, in order: weight, limit count (0 = none), limit period."""
        args: list[str | int | float] = []
        for queue in queues:
            count, period = self.queue_limits.get(queue, (0, 0.0))
            args += [self.weights.get(queue, 1), count, period]
        return args


def policy_for(settings: Settings) -> ClaimPolicy:
    """The claim policy of ``settings`` (parsed once per distinct value).

    Raises:
        ConfigError: a malformed weight or rate, naming the setting and the fix.
    """
    s = settings
    return _policy(s.mode, s.queue_weights, s.queue_rate_limits, s.worker_rate_limit)


@functools.lru_cache(maxsize=8)
def _policy(mode: str, weights: tuple[str, ...], rates: tuple[str, ...], worker: str | None) -> ClaimPolicy:
    if mode not in ("strict", "weighted"):
        raise ConfigError(f"TASKRAIL_MODE must be 'strict' or 'weighted', got {mode!r}")
    weight_of = {q: _weight(q, v) for q, v in _pairs("TASKRAIL_QUEUE_WEIGHTS", weights)}
    limits = {
        q: _rate("TASKRAIL_QUEUE_RATE_LIMITS", q, v).window() for q, v in _pairs("TASKRAIL_QUEUE_RATE_LIMITS", rates)
    }
    worker_limit = _rate("TASKRAIL_WORKER_RATE_LIMIT", "worker", worker).window() if worker else None
    return ClaimPolicy(mode == "weighted", weight_of, limits, worker_limit)


def _pairs(setting: str, items: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(f"{setting}: expected items like 'email=20/s' or 'critical=6', got {item!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def _weight(queue: str, text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"TASKRAIL_QUEUE_WEIGHTS: {queue}: weight must be a positive integer, got {text!r}")
    return int(text)


def _rate(setting: str, name: str, text: str) -> RateLimit:
    try:
        return parse_rate_limit(text)
    except ConfigError as exc:
        raise ConfigError(f"{setting}: {name}: {exc}") from exc
