"""Per-key state is bounded: distinct rate-limit keys (``limit_key``) leave nothing behind once their windows
pass, and server memory returns to where it was. Not timed: keys and bytes. ``make test`` uses 10,000 keys to stay
within its time; ``make test-scale`` (SCALE_TEST_N=100000) the issue's 100,000."""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any

import redis
from redis.client import Pipeline

from tasks import task
from tasks.core import keys
from tasks.core.protocol import DATA_MAX_BYTES
from tasks.core.scripting import LuaScript, load_command, run_pipeline
from tests.conftest import wait_for

KEYS_N = int(os.environ.get("SCALE_TEST_N", "10000"))
QUEUE = "limited"
ROUND = 1000  # claims (or finishes) per round trip


@task(queue=QUEUE, rate_limit="1/s", limit_key="customer")
def per_customer(customer: str, n: int) -> int:
    """One start a second per customer: each customer's window lives about a second past its start."""
    return n


def _claim_all(conn: redis.Redis) -> list[str]:
    """Claim every waiting job of QUEUE; a limited job is claimed as a batch of its own, so one per call."""
    claim, ids = load_command("claim"), []
    while True:
        args = ["w1", 10, time.time(), "", time.time() + 3600, 100, "strict", 0, 0, DATA_MAX_BYTES, 900, 1, 0, 0]
        calls = [(["taskrail:claims:w1", keys.PAUSED, QUEUE], args)] * ROUND
        replies = run_pipeline(conn, partial(_queue_all, claim, calls))
        got = [row[0].decode() for reply in replies for row in reply[:-1]]
        if not got:
            return ids
        ids += got


def _finish_all(conn: redis.Redis, ids: list[str]) -> None:
    """Settle every claimed job as done, its result kept for 0 s (so the job hash goes at once)."""
    finish = load_command("finish")
    for start in range(0, len(ids), ROUND):
        now = time.time()
        records = [[i, QUEUE, "ok", "", 0, 0, "", "", 0.1, "tests.test_scale_limits.per_customer", "le_5ms", 0, "", ""]
                   for i in ids[start : start + ROUND]]  # fmt: skip
        head = ["w1", now, "", 100, int(now // 60)]
        run_pipeline(conn, partial(_queue_all, finish, [(["taskrail:claims:w1"], [*head, *r]) for r in records]))


def _queue_all(script: LuaScript, calls: list[tuple[list[Any], list[Any]]], pipe: Pipeline) -> None:
    for keys_, args in calls:
        script.queue(pipe, keys_, args)


def _limit_keys(conn: redis.Redis) -> int:
    return sum(1 for _ in conn.scan_iter("taskrail:rl:*", count=10_000))


def _lasting_keys(conn: redis.Redis) -> set[bytes]:
    """Every key but the per-minute counters (a new minute may start during the test; they expire in 2 h)."""
    return {k for k in conn.scan_iter(count=10_000) if not k.startswith(b"taskrail:stats:")}


def test_distinct_limit_keys_expire_and_memory_returns_to_baseline(settings, conn: redis.Redis) -> None:
    per_customer.apply_async(("warm-up", 0))  # scripts, stream, task stats: in the baseline
    _finish_all(conn, _claim_all(conn))
    conn.delete(*conn.keys("taskrail:rl:*"))  # the warm-up's window
    baseline_keys, baseline = _lasting_keys(conn), int(conn.info("memory")["used_memory"])

    per_customer.enqueue_many([(f"customer-{i}", i) for i in range(KEYS_N)])
    ids = _claim_all(conn)  # each claim starts a window of its own customer
    windows, peak = _limit_keys(conn), int(conn.info("memory")["used_memory"])
    assert len(set(ids)) == KEYS_N and windows > 0  # every customer started at once: none waited
    _finish_all(conn, ids)

    wait_for(lambda: _limit_keys(conn) == 0, 90, what="every customer's window to expire (a second after its start)")
    assert _lasting_keys(conn) == baseline_keys  # no job, claim, slot or window left behind
    grown = peak - baseline
    wait_for(
        lambda: int(conn.info("memory")["used_memory"]) - baseline < grown / 10,
        60,
        what=f"server memory to come back within 10% of the {grown:,} bytes the windows took",
    )
