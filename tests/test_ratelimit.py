"""Global rate limits and concurrency caps, across real worker processes sharing one server.

Windows are checked on the admissions themselves: every start the claim script admits is a member of
its window's sorted set, scored with the server's clock, and stays there for at least one period; a
thread (``Admissions``) polls those sets and keeps every member with its score. So the checks are exact,
whatever the load: no slack for the time a task takes to record its own start.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from config.settings import load_settings
from tasks import ConfigError, task
from tests import tasks_sched
from tests.conftest import Processes, live_workers, wait_for
from workers.ratelimit import policy_for

SCHED = {"TASKRAIL_IMPORTS": "tests.tasks_sched"}
POLL_S = 0.05  # far below the shortest window (1 s), for which an admission stays in its set


class Admissions:
    """Every admission into the rate windows matching ``pattern``: key -> {member: server time}."""

    def __init__(self, conn: redis.Redis, pattern: str = "taskrail:rl:*") -> None:
        self.conn = redis.Redis(connection_pool=conn.connection_pool)
        self.pattern = pattern
        self.seen: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Admissions:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._poll_once()  # the last admissions, still in their sets for a period

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._poll_once()
            self._stop.wait(POLL_S)

    def _poll_once(self) -> None:
        for key in self.conn.scan_iter(self.pattern, count=1000):
            members = self.conn.zrange(key, 0, -1, withscores=True)
            self.seen.setdefault(key.decode(), {}).update((m.decode(), t) for m, t in members)

    def times(self, key: str) -> list[float]:
        return sorted(self.seen.get(key, {}).values())


def _busiest_window(times: list[float], period: float = 1.0) -> int:
    """The most starts inside any window of ``period``."""
    times = sorted(times)
    return max((sum(1 for t in times if start <= t < start + period) for start in times), default=0)


def _start_workers(
    procs: Processes, conn: redis.Redis, n: int, *queues: str, env: dict[str, str] | None = None
) -> None:
    for _ in range(n):
        procs.worker(*queues, env={**SCHED, **(env or {})})
    wait_for(lambda: len(live_workers(conn)) == n, 20, what=f"{n} workers")


def test_40_jobs_at_5_per_second_on_3_workers(settings, procs: Processes, conn: redis.Redis) -> None:
    _start_workers(procs, conn, 3, "limited")
    conn.config_resetstat()
    with Admissions(conn) as admitted:
        results = tasks_sched.limited.enqueue_many([(n,) for n in range(40)])
        wait_for(lambda: conn.llen("starts") == 40, 30, what="40 starts")
        wait_for(lambda: all(r.ready() for r in results), 10, what="40 results")
        elapsed = time.time() - float(conn.lrange("starts", 0, 0)[0].split()[0])
    starts = admitted.times("taskrail:rl:t:tests.tasks_sched.limited")
    assert len(starts) == 40  # every admission seen, on the server's clock
    assert _busiest_window(starts) == 5  # the limit, used to the full and never passed
    assert starts[-1] - starts[0] >= 7.0  # 8 windows of 5: the 36th start at least 7 s after the first
    # Workers waiting for a slot block until it frees instead of asking again and again: about 200
    # script calls in all (claims, settles, heartbeats, the scheduler); a spinning worker makes thousands a second.
    scripts = conn.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    assert scripts < 100 * elapsed, scripts
    assert all(r.successful() and r.attempts == 1 for r in results)
    stats = conn.hgetall("taskrail:taskstats:tests.tasks_sched.limited")
    assert int(stats[b"completed"]) == 40 and b"failed" not in stats and b"retried" not in stats


def test_a_waiting_job_keeps_its_place_and_other_jobs_run_meanwhile(
    settings, procs: Processes, conn: redis.Redis
) -> None:
    tasks_sched.limited.enqueue_many([(n,) for n in range(12)])
    for i in range(3):
        tasks_sched.mark.apply_async((f"free-{i}",), queue="limited")
    _start_workers(procs, conn, 1, "limited")
    wait_for(lambda: conn.llen("starts") == 12, 20, what="12 limited starts")
    starts = [s.split() for s in conn.lrange("starts", 0, -1)]
    assert [int(n) for _, n in starts] == list(range(12))  # in order: each waited in its place
    free_done = max(float(t) for t in conn.lrange("order_times", 0, -1))
    assert conn.llen("order") == 3 and free_done < float(starts[5][0])  # not stuck behind the limit


def test_keyed_limit_holds_per_key(settings, procs: Processes, conn: redis.Redis) -> None:
    _start_workers(procs, conn, 2, "limited")
    with Admissions(conn) as admitted:
        tasks_sched.per_customer.enqueue_many([(customer, n) for n in range(6) for customer in ("acme", "globex")])
        wait_for(lambda: conn.llen("starts:acme") + conn.llen("starts:globex") == 12, 20, what="12 starts")
    per_key = {c: admitted.times(f"taskrail:rl:t:tests.tasks_sched.per_customer:{c}") for c in ("acme", "globex")}
    assert [len(times) for times in per_key.values()] == [6, 6], per_key
    assert all(_busiest_window(times) == 2 for times in per_key.values()), per_key
    # The two keys do not share one budget: four starts fit in the first second.
    assert _busiest_window(per_key["acme"] + per_key["globex"]) >= 4


def test_queue_rate_limit_from_the_profile(settings, procs: Processes, conn: redis.Redis) -> None:
    _start_workers(procs, conn, 2, "default", env={"TASKRAIL_QUEUE_RATE_LIMITS": "default=4/s"})
    with Admissions(conn) as admitted:
        tasks_sched.mark.enqueue_many([(f"m{i}",) for i in range(10)])
        wait_for(lambda: conn.llen("order") == 10, 20, what="10 starts")
    times = admitted.times("taskrail:rl:q:default")
    assert len(times) == 10 and _busiest_window(times) == 4
    assert times[-1] - times[0] >= 2.0  # 10 starts at 4/s: the 9th at least two windows after the first


def test_per_worker_rate_limit(settings, procs: Processes, conn: redis.Redis) -> None:
    _start_workers(procs, conn, 1, "default", env={"TASKRAIL_WORKER_RATE_LIMIT": "3/s"})
    with Admissions(conn, "taskrail:rl:w:*") as admitted:
        tasks_sched.mark.enqueue_many([(f"m{i}",) for i in range(7)])
        wait_for(lambda: conn.llen("order") == 7, 20, what="7 starts")
    [times] = [admitted.times(key) for key in admitted.seen]
    assert len(times) == 7 and _busiest_window(times) == 3 and times[-1] - times[0] >= 2.0


def test_concurrency_cap_of_2_never_shows_3_running(settings, procs: Processes, conn: redis.Redis) -> None:
    _start_workers(procs, conn, 3, "limited")
    results = tasks_sched.capped.enqueue_many([(0.3,)] * 10)
    wait_for(lambda: all(r.ready() for r in results), 30, what="10 capped jobs")
    seen = [int(n) for n in conn.lrange("running_seen", 0, -1)]
    assert max(seen) == 2, seen  # two at once (the cap is used), never three
    assert all(r.successful() for r in results)
    assert conn.zcard("taskrail:cc:tests.tasks_sched.capped") == 0


def test_slots_of_a_killed_worker_are_released(settings, procs: Processes, conn: redis.Redis) -> None:
    fast = {"TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5", "TASKRAIL_HEARTBEAT_TTL_S": "2"}
    doomed = procs.worker("limited", env={**SCHED, **fast, "TASKRAIL_CONCURRENCY": "2"})
    wait_for(lambda: live_workers(conn), 20, what="the first worker")
    conn.set("hold", 1)
    held = tasks_sched.capped.enqueue_many([(60.0, "hold"), (60.0, "hold")])
    wait_for(lambda: conn.get("running") == b"2", 15, what="both slots taken")
    doomed.kill()
    doomed.wait(10)
    conn.delete("hold")  # when the recovered jobs run again, they finish at once
    conn.set("running", 0)
    later = tasks_sched.capped.enqueue_many([(0.05,)] * 3)
    procs.worker("limited", env={**SCHED, **fast})
    every = held + later
    wait_for(lambda: all(r.ready() for r in every), 30, what="capped jobs after the crash")
    assert all(r.successful() for r in every)
    assert [r.attempts for r in held] == [2, 2]
    assert conn.zcard("taskrail:cc:tests.tasks_sched.capped") == 0


def test_limit_options_are_checked_when_the_task_is_declared() -> None:
    def send(to: str, body: str) -> None: ...

    with pytest.raises(ConfigError, match="limit_key 'recipient' is not a parameter; name one of to, body"):
        task(rate_limit="1/s", limit_key="recipient")(send)
    with pytest.raises(ConfigError, match="concurrency_limit must be an integer >= 1"):
        task(concurrency_limit=0)(send)
    with pytest.raises(ConfigError, match="limit_key needs rate_limit or concurrency_limit"):
        task(limit_key="to")(send)
    domain = task(name="t.send_domain", rate_limit="2.5/s", limit_key=lambda to, body: to.rsplit("@", 1)[-1])(send)
    fields = domain.options.limit_fields(domain.call_signature, ("a@example.com", "hi"), {})
    assert fields == {"tr_rate": "2/0.8", "tr_limit_key": "example.com"}


def test_scheduling_settings_fail_with_the_variable_and_the_fix() -> None:
    with pytest.raises(ConfigError, match="'mode' must be 'strict' or 'weighted'"):
        load_settings({"TASKRAIL_MODE": "fair"})
    with pytest.raises(ConfigError, match="TASKRAIL_QUEUE_WEIGHTS: critical: weight must be a positive integer"):
        policy_for(load_settings({"TASKRAIL_QUEUE_WEIGHTS": "critical=0"}))
    with pytest.raises(ConfigError, match="TASKRAIL_QUEUE_RATE_LIMITS: expected items like 'email=20/s'"):
        policy_for(load_settings({"TASKRAIL_QUEUE_RATE_LIMITS": "20/s"}))
    policy = policy_for(load_settings({"TASKRAIL_MODE": "weighted", "TASKRAIL_QUEUE_WEIGHTS": "critical=6,bulk=1",
                                       "TASKRAIL_QUEUE_RATE_LIMITS": "email=20/s", "TASKRAIL_WORKER_RATE_LIMIT": "5/m"}))  # fmt: skip
    assert policy.weighted and policy.queue_args(["critical", "email"]) == [6, 0, 0.0, 1, 20, 1.0]
    assert policy.worker_limit == (5, 60.0)
