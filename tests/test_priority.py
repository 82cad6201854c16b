"""Queue order, priorities inside a queue and weighted sharing, through real workers."""

from __future__ import annotations

import random
from collections import Counter

import redis

from tasks.core import keys
from tasks.core.protocol import DATA_MAX_BYTES
from tests import tasks_sched
from tests.conftest import Processes, wait_for
from tests.lua.helpers import NOW, NOW_TEXT, run, run_order

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
    # RQ's lists, one per priority, taken in priority order, show the order the jobs will run in.
    assert _waiting_tags(conn) == expected
    assert [
        tasks_sched_tag(conn.hget(f"rq:job:{i.decode()}", "data")) for i in conn.lrange("rq:queue:default:p9", 0, -1)
    ] == ["p9", "p9b"]
    procs.worker("default", env=SCHED)
    wait_for(lambda: conn.llen("order") == len(expected), 20, what="every job to run")
    assert _order(conn) == expected
    assert not conn.exists("taskrail:levels:default")  # the priorities' index goes once none of theirs waits


def tasks_sched_tag(data: bytes | None) -> str:
    assert data is not None
    return data.decode().split('"')[3]  # ["tests.tasks_sched.mark",null,["<tag>"],{}]


def _waiting_tags(conn: redis.Redis, queue: str = "default") -> list[str]:
    """The tags of the jobs waiting in ``queue``, in the order workers will take them."""
    ids = [i.decode() for key in keys.waiting_lists(queue) for i in conn.lrange(key, 0, -1)]
    return [tasks_sched_tag(conn.hget(f"rq:job:{i}", "data")) for i in ids]


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


def test_the_queue_lists_are_always_in_run_order(settings, conn: redis.Redis) -> None:
    rng = random.Random(7)
    expected: list[tuple[int, int, str]] = []  # (priority, arrival, tag): a stable sort gives the run order
    for arrival in range(300):
        tag, priority = f"j{arrival}", rng.choice([None, None, None, 0, 2, 5, 7, 9])
        if priority is None and rng.random() < 0.3:
            tasks_sched.mark.enqueue_many([(tag,)])  # the bulk path
        else:
            tasks_sched.mark.apply_async((tag,), **({"priority": priority} if priority is not None else {}))
        expected.append((5 if priority is None else priority, arrival, tag))
    assert _waiting_tags(conn) == [tag for _, _, tag in sorted(expected)]


def _push(conn: redis.Redis, job_id: str, priority: int | None = None, **fields: str) -> None:
    """Enqueue a job hash through the enqueue command, into queue q."""
    if priority is not None:
        fields["tr_priority"] = str(priority)
    keys_ = [f"rq:job:{job_id}", "rq:queue:q", "rq:queues", "rq:scheduled:q", "taskrail:wake:q",
             "taskrail:events:q", "", "taskrail:levels:q"]  # fmt: skip
    base = {"data": "[]", "status": "queued", "origin": "q", "tr_task": "t", "timeout": "60", **fields}
    run(conn, "enqueue", keys_, [job_id, 0, 100, 0, "", "t", *[x for pair in base.items() for x in pair]])


def _claim(conn: redis.Redis, count: int) -> list[str]:
    args = ["w1", count, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, DATA_MAX_BYTES, 900, 1, 0, 0]
    return [row[0].decode() for row in run(conn, "claim", ["taskrail:claims:w1", keys.PAUSED, "q"], args)[:-1]]


def test_a_requeued_job_goes_back_to_the_front_of_its_own_priority(conn: redis.Redis) -> None:
    for job_id, priority in [("a0", 0), ("b0", 0), ("plain", None), ("a9", 9)]:
        _push(conn, job_id, priority)
    assert _claim(conn, 1) == ["a0"]
    record = ["a0", "q", "requeue", "", 500, 0, "requeued", "", 1.5, "t", "", 1, "", ""]
    run(conn, "finish", ["taskrail:claims:w1"], ["w1", NOW, NOW_TEXT, 100, int(NOW // 60), *record])
    assert run_order(conn) == ["a0", "b0", "plain", "a9"]
    assert conn.zrange("taskrail:levels:q", 0, -1) == [b"0", b"9"]


def test_a_limited_job_set_aside_keeps_its_place_in_its_priority(conn: redis.Redis) -> None:
    _push(conn, "free", 3)
    _push(conn, "capped", 3, tr_conc="1")  # claimed only as a batch of its own
    _push(conn, "plain")
    assert _claim(conn, 10) == ["free"]
    assert run_order(conn) == ["capped", "plain"] and conn.zrange("taskrail:levels:q", 0, -1) == [b"3"]
    assert _claim(conn, 10) == ["capped"]
    assert _claim(conn, 10) == ["plain"] and not conn.exists("taskrail:levels:q")


def test_move_takes_jobs_in_run_order_and_keeps_their_priorities(conn: redis.Redis) -> None:
    for job_id, priority in [("plain", None), ("p7", 7), ("p1", 1), ("p1b", 1)]:
        _push(conn, job_id, priority)
    assert run(conn, "move", ["q", "r"], [3, 100]) == 3
    assert run_order(conn, "q") == ["p7"] and run_order(conn, "r") == ["p1", "p1b", "plain"]
    assert conn.lrange("rq:queue:r:p1", 0, -1) == [b"p1", b"p1b"] and conn.hget("rq:job:p1", "origin") == b"r"


def test_a_dead_letter_requeued_goes_back_to_its_own_priority(conn: redis.Redis) -> None:
    _push(conn, "plain")
    conn.hset("rq:job:dead", mapping={"data": "[]", "status": "failed", "origin": "q", "tr_priority": "2"})
    conn.zadd("rq:failed:q", {"dead": NOW})
    keys_ = ["rq:failed:q", "rq:job:dead", "rq:queue:q", "rq:queues", "taskrail:wake:q", "taskrail:events:q",
             "rq:results:dead", "taskrail:done:dead"]  # fmt: skip
    assert run(conn, "requeue_dead", keys_, ["dead", NOW_TEXT, 100]) == 1
    assert run_order(conn) == ["dead", "plain"] and conn.lrange("rq:queue:q:p2", 0, -1) == [b"dead"]
