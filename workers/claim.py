"""Which jobs a worker takes next: the arguments and reply of the claim command (tasks/core/lua/claim.lua).

Queue order (strict priority or weights), pausing, priorities inside a queue and rate limits are
all decided here, inside one server-side script, so they hold across every worker and machine.

- Strict mode takes from the first non-empty queue in the worker's order; weighted mode picks the
  queue of every job by smooth weighted round robin (nginx's), its state kept per worker in
  ``taskrail:wrr:<worker>``, so each busy queue gets its weight's share and none starves.
- Inside a queue, each priority has its own FIFO list (tasks/core/lua/includes/queue_push.lua); claim
  reads which priorities have jobs (``taskrail:levels:<queue>``, once per queue and call) and pops
  the lists in priority order, so a claim costs the same at any backlog.
- A job over a limit (workers/ratelimit.py) is set aside and put back at the front of its queue in
  its place, so jobs behind it and other queues are still served. It is not failed and uses no
  retry. When nothing could be claimed, the reply says how long until the next slot frees, and the
  worker blocks on its wake-up lists for at most that long (it never spins).
- A job under a limit or cap is claimed only as a batch of its own, so it starts as it is claimed
  and its slot is not held while other jobs of the batch run.
- A poison job (no data, data over ``DATA_MAX_BYTES``, which the claim does not even read, or a bad
  ``tr_*``, timeout or TTL field) comes back with the reason and no data; the worker fails it at once.
  One whose id is not UTF-8 is failed inside the claim, and an id without a job hash is dropped.
- RQ's ``dequeue_strategy`` (``rq worker --dequeue-strategy``): ``random`` shuffles the queue order
  of every claim; ``round_robin`` takes one job per queue in turn, as RQ does, by claiming in
  weighted mode with equal weights (a smooth weighted round robin of equal weights is a plain round
  robin, its position kept across claims). Under a weighted profile the weights already interleave
  queues, and ``round_robin`` changes nothing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from config.settings import Settings
from tasks.core import keys
from tasks.core.protocol import DATA_MAX_BYTES
from workers.ratelimit import policy_for

__all__ = ["DEQUEUE_STRATEGIES", "claim_call", "claim_reply"]

DEQUEUE_STRATEGIES = ("default", "random", "round_robin")  # RQ's DequeueStrategy values


def claim_call(worker: str, queues: list[str], count: int, now: float, now_text: str, score: float,
               maxlen: int, settings: Settings, strategy: str = "default",
               rate_overrides: Mapping[str, str] | None = None) -> tuple[list[str], list[Any]]:  # fmt: skip
    """KEYS and ARGV for one claim of up to ``count`` jobs from ``queues`` (in priority order), ordered
    by RQ's dequeue ``strategy``; ``rate_overrides`` (task -> ``count/seconds``, ``""``: none) replace the
    rate limits jobs carry (``taskrail control rate_limit``), and cost nothing when empty.

    Raises:
        ConfigError: malformed queue weights or rate limits in ``settings``.
    """
    policy = policy_for(settings)
    worker_count, worker_period = policy.worker_limit or (0, 0.0)
    round_robin = strategy == "round_robin" and not policy.weighted
    if strategy == "random":
        queues = random.sample(queues, len(queues))
    mode = "weighted" if policy.weighted or round_robin else "strict"
    queue_args = policy.queue_args(queues)
    if round_robin:
        queue_args[0::3] = [1] * len(queues)  # equal weights: one job per queue in turn
    args: list[Any] = [worker, count, now, now_text, score, maxlen, mode]
    args += [worker_count, worker_period, DATA_MAX_BYTES, settings.failure_ttl_s, *queue_args]
    if rate_overrides:
        args.append(json.dumps(rate_overrides))
    return [keys.CLAIMS.format(worker), keys.PAUSED, *queues], args


def claim_reply(reply: list[Any]) -> tuple[list[Any], float]:
    """Split claim's reply into the claimed rows and the seconds until a limited job may start (0 = none)."""
    if not reply or not isinstance(reply[-1], int):
        return list(reply or []), 0.0
    return list(reply[:-1]), reply[-1] / 1000
