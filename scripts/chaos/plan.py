"""The chaos run's jobs: a seeded mix of kinds, enqueued in bulk, with the value each one must return."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.chaos.jobs import flaky, part, plain, plain_value, total
from tasks import chord
from tasks.core.client import Client
from tasks.core.groups import GroupResult

__all__ = ["CHORD_SIZE", "Expected", "enqueue_mix"]

CHORD_SIZE = 10  # children per chord; each chord is CHORD_SIZE + 1 jobs
BATCH = 1000
# Shares of the jobs by kind; plain jobs take the rest.
SHARES = {"retried": 0.15, "prioritized": 0.15, "delayed": 0.10, "chord": 0.10}
MAX_COUNTDOWN_S = 10.0


@dataclass
class Expected:
    """What the run enqueued: job id -> the value its result must hold, and the job count per kind."""

    values: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, ids: list[str], values: list[int]) -> None:
        self.values.update(zip(ids, values, strict=True))
        self.kinds[kind] = self.kinds.get(kind, 0) + len(ids)


def enqueue_mix(
    client: Client, jobs: int, work_ms: float, seed: int, on_progress: Callable[[int], object] | None = None
) -> Expected:
    """Enqueue about ``jobs`` jobs of every kind (chords round to whole chords); returns what each must give."""
    rng = random.Random(seed)
    expected = Expected()
    counts = {kind: int(jobs * share) for kind, share in SHARES.items()}
    counts["chord"] = counts["chord"] // (CHORD_SIZE + 1)  # whole chords
    counts["prioritized"] -= counts["prioritized"] % 10  # as many of each priority
    counts["plain"] = jobs - sum(v for k, v in counts.items() if k != "chord") - counts["chord"] * (CHORD_SIZE + 1)
    progress = on_progress or (lambda n: None)

    def send(kind: str, task: Any, calls: list[tuple[Any, ...]], values: list[int], **options: Any) -> None:
        for start in range(0, len(calls), BATCH):
            results = task.enqueue_many(calls[start : start + BATCH], client=client, **options)
            expected.add(kind, [r.id for r in results], values[start : start + BATCH])
            progress(len(results))

    pairs = [(rng.randrange(10**6), rng.randrange(10**6)) for _ in range(counts["plain"])]
    send("plain", plain, [(a, b, work_ms) for a, b in pairs], [plain_value(a, b) for a, b in pairs])
    flakes = [(rng.randrange(10**6), rng.randint(1, 2)) for _ in range(counts["retried"])]
    send("retried", flaky, [(a, f, work_ms) for a, f in flakes], [a * 7 for a, _ in flakes])
    for priority in range(10):  # Task.enqueue_many takes one priority per call
        share = [(rng.randrange(10**6), rng.randrange(10**6)) for _ in range(counts["prioritized"] // 10)]
        send("prioritized", plain, [(a, b, work_ms) for a, b in share], [plain_value(a, b) for a, b in share],
             priority=priority)  # fmt: skip
    for _ in range(counts["delayed"]):
        a, b = rng.randrange(10**6), rng.randrange(10**6)
        result = plain.apply_async((a, b, work_ms), client=client, countdown=rng.uniform(0.5, MAX_COUNTDOWN_S))
        expected.add("delayed", [result.id], [plain_value(a, b)])
        progress(1)
    for _ in range(counts["chord"]):
        inputs = [rng.randrange(10**6) for _ in range(CHORD_SIZE)]
        handle = chord([part.s(a, work_ms) for a in inputs], total.s()).apply_async(client=client)
        assert isinstance(handle.parent, GroupResult)  # a chord's callback result has its header as parent
        expected.add("chord", [*handle.parent.ids, handle.id], [*(a * 3 for a in inputs), sum(a * 3 for a in inputs)])
        progress(CHORD_SIZE + 1)
    return expected
