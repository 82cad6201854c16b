"""Queue order, priorities inside a queue and weighted sharing, through real workers."""

from __future__ import annotations

import random
from collections import Counter

import redis

from tests import tasks_sched
from tests.conftest import Processes, wait_for

SCHED = {"TASKRAIL_IMPORTS": "tests.tasks_sched"}
ALL_QUEUES = ("critical", "default", "bulk")


def _order(conn: redis.Redis) -> list[str]:
    return [tag.decode() for tag in conn.lrange("order", 0, -1)]


def test_critical_job_behind_50_bulk_jobs_starts_next(settings, procs: Processes, conn: redis.Redis) -> None:
    tasks_sched.mark.enqueue_many([(f"bulk-{i}",) for i in range(50)], queue="bulk")
    tasks_sched.mark.apply_async(("critical",), queue="critical")
    procs.worker(*ALL_QUEUES, env=SCHED)
    wait_for(lambda: conn.llen("order") == 51, 30, what="all 51 jobs to start")
    order = _order(conn)
    assert order[0] == "critical", order[:5]
    assert order[1:] == [f"bulk-{i}" for i in range(50)]


def test_critical_job_overtakes_a_running_bulk_backlog(settings, procs: Processes, conn: redis.Redis) -> None:
    tasks_sched.mark.enqueue_many([(f"bulk-{i}", 0.02) for i in range(80)], queue="bulk")
    procs.worker(*ALL_QUEUES, env=SCHED)
    # After the first batch the worker claims about 20 ms of work at a time: one 20 ms job.
    wait_for(lambda: conn.llen("order") >= 25, 30, what="the worker to work through its first batch")
    tasks_sched.mark.apply_async(("critical",), queue="critical")
    started_before = conn.llen("order")  # read after the enqueue: at least as many as had started by then
    wait_for(lambda: b"critical" in conn.lrange("order", 0, -1), 15, what="the critical job to start")
    position = _order(conn).index("critical")
    assert position <= started_before + 2, (position, started_before)


def test_priority_numbers_order_jobs_inside_a_queue(settings, procs: Processes, conn: redis.Redis) -> None:
    calls = [("p9", 9), ("none-1", None), ("p0", 0), ("p5", 5), ("none-2", None), ("p3", 3), ("p9b", 9), ("p0b", 0)]
    for tag, priority in calls:
        options = {"priority": priority} if priority is not None else {}
        tasks_sched.mark.apply_async((tag,), **options)
    tasks_sched.mark.enqueue_many([("plain-1",), ("plain-2",)])  # the bulk path keeps the order too
    expected = ["p0", "p0b", "p3", "none-1", "p5", "none-2", "plain-1", "plain-2", "p9", "p9b"]
    # RQ's own list shows the order the jobs will run in.
    waiting = [conn.hget(f"rq:job:{i.decode()}", "data") for i in conn.lrange("rq:queue:default", 0, -1)]
    assert [tasks_sched_tag(d) for d in waiting] == expected
    procs.worker("default", env=SCHED)
    wait_for(lambda: conn.llen("order") == len(expected), 20, what="every job to run")
    assert _order(conn) == expected
    assert not conn.exists("taskrail:prio:default")  # the index goes once no prioritized job waits


def tasks_sched_tag(data: bytes | None) -> str:
    assert data is not None
    return data.decode().split('"')[3]  # ["tests.tasks_sched.mark",null,["<tag>"],{}]


def test_weighted_mode_shares_completions_by_weight(settings, procs: Processes, conn: redis.Redis) -> None:
    weights = {"critical": 6, "default": 3, "bulk": 1}
    for queue in weights:  # a constant backlog: more than 300 jobs on every queue
        tasks_sched.mark.enqueue_many([(queue,)] * 310, queue=queue)
    env = {**SCHED, "TASKRAIL_MODE": "weighted", "TASKRAIL_QUEUE_WEIGHTS": "critical=6,default=3,bulk=1"}
    procs.worker(*weights, env=env)
    wait_for(lambda: conn.llen("order") >= 300, 60, what="300 completions")
    shares = Counter(_order(conn)[:300])
    total = sum(weights.values())
    for queue, weight in weights.items():
        expected = 300 * weight / total
        assert abs(shares[queue] - expected) <= 0.1 * expected, (queue, shares, expected)


def test_strict_mode_serves_the_first_queue_while_it_has_jobs(settings, procs: Processes, conn: redis.Redis) -> None:
    for queue in ("bulk", "critical"):
        tasks_sched.mark.enqueue_many([(queue,)] * 40, queue=queue)
    procs.worker(*ALL_QUEUES, env=SCHED)
    wait_for(lambda: conn.llen("order") == 80, 30, what="80 completions")
    assert _order(conn) == ["critical"] * 40 + ["bulk"] * 40


def test_the_queue_list_is_always_in_run_order(settings, conn: redis.Redis) -> None:
    rng = random.Random(7)
    expected: list[tuple[int, int, str]] = []  # (priority, arrival, tag): a stable sort gives the run order
    for arrival in range(300):
        tag, priority = f"j{arrival}", rng.choice([None, None, None, 0, 2, 5, 7, 9])
        if priority is None and rng.random() < 0.3:
            tasks_sched.mark.enqueue_many([(tag,)])  # the bulk path
        else:
            tasks_sched.mark.apply_async((tag,), **({"priority": priority} if priority is not None else {}))
        expected.append((5 if priority is None else priority, arrival, tag))
    waiting = [conn.hget(f"rq:job:{i.decode()}", "data") for i in conn.lrange("rq:queue:default", 0, -1)]
    assert [tasks_sched_tag(d) for d in waiting] == [tag for _, _, tag in sorted(expected)]
