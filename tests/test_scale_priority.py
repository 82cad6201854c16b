"""Priorities at a large backlog: run order across every level with many waiting jobs (10,000 in ``make test``,
100,000 in ``make test-scale``: SCALE_TEST_N), and the counts
RQ's own tools, ``taskrail status`` and the metrics show for them. Not timed: the order and the counts."""

from __future__ import annotations

import os
import random
import re
import subprocess

import redis
from rq import Queue

from tasks.core import keys
from tasks.core.protocol import DATA_MAX_BYTES
from tasks.core.queues import waiting
from tasks.core.scripting import load_command
from tests import tasks_sched
from tests.conftest import BIN
from workers.census import queue_stats
from workers.scale_load import queue_load

JOBS = int(os.environ.get("SCALE_TEST_N", "10000"))
CHUNK = 500  # jobs per Task.map call: one priority each, so priorities arrive interleaved


def _enqueue_mixed(rng: random.Random) -> list[tuple[int, int, str]]:
    """JOBS jobs in chunks of random priority (None: the default); (priority, arrival, tag) per job."""
    sent: list[tuple[int, int, str]] = []
    while len(sent) < JOBS:
        priority = rng.choice([None, None, 0, 1, 3, 5, 6, 9])
        tags = [f"j{len(sent) + i}" for i in range(CHUNK)]
        tasks_sched.mark.enqueue_many([(tag,) for tag in tags], **({} if priority is None else {"priority": priority}))
        level = keys.DEFAULT_PRIORITY if priority is None else priority
        sent += [(level, len(sent) + i, tag) for i, tag in enumerate(tags)]
    return sent


def _claim_all(conn: redis.Redis) -> list[str]:
    """Every waiting job's tag, claimed 1000 at a time by the claim command, in claim order."""
    claim, tags = load_command("claim"), []
    while True:
        args = ["w1", 1000, 0, "", 0, 100, "strict", 0, 0, DATA_MAX_BYTES, 900, 1, 0, 0]
        rows = claim(conn, ["taskrail:claims:w1", keys.PAUSED, "default"], args)[:-1]
        if not rows:
            return tags
        tags += [row[2].decode().split('"')[3] for row in rows]  # data: ["tests.tasks_sched.mark",null,["<tag>"],{}]


def _rq_info_total(url: str) -> int:
    """The sum of the counts ``rq info`` prints for queue ``default`` and its priority lists."""
    out = subprocess.run([str(BIN / "rq"), "info", "-u", url, "--only-queues", "--raw"], capture_output=True,
                         text=True, check=True, timeout=60).stdout  # fmt: skip
    return sum(int(n) for n in re.findall(r"^queue default(?::p\d)? (\d+),", out, re.MULTILINE))


def test_waiting_jobs_are_counted_by_rq_tools_and_run_in_priority_order(settings, conn: redis.Redis) -> None:
    sent = _enqueue_mixed(random.Random(17))
    by_level = {level: sum(1 for s in sent if s[0] == level) for level in {s[0] for s in sent}}
    rq_counts = {q.name: q.count for q in Queue.all(connection=conn)}  # what rq-dashboard lists
    expected = {("default" if p == keys.DEFAULT_PRIORITY else f"default:p{p}"): n for p, n in by_level.items()}
    assert rq_counts == expected and sum(rq_counts.values()) == JOBS
    assert _rq_info_total(settings.redis_url) == JOBS
    [stats] = queue_stats(conn, ["default"])  # taskrail status, the dashboard's API, the metrics endpoint
    assert stats.counts["waiting"] == JOBS and stats.oldest_age_s is not None
    assert queue_load(conn, settings, "default").waiting == JOBS  # autoscale and /load

    assert _claim_all(conn) == [tag for _, _, tag in sorted(sent)]  # by priority, FIFO within each
    assert not conn.exists(keys.LEVELS.format("default"))  # no priority has a job waiting
    assert waiting(conn, ["default"]) == {"default": 0}
    assert queue_stats(conn, ["default"])[0].counts["waiting"] == 0
