"""Metrics at production scale (issue 22, defects 3 and 4): a scrape's cost does not grow with the keyspace,
and the oldest-wait gauge sees the longest-waiting job wherever priorities put it.

Cost is counted, not timed: the server's own command statistics (INFO commandstats) and the keys
it looked up (keyspace hits and misses) for one scrape of a real ``taskrail metrics`` process.
"""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import redis

from tasks import pause, resume
from tests import tasks_observe as ot
from tests.conftest import Processes, live_workers, wait_for
from tests.lua.helpers import run_order
from tests.test_metrics import OBS, scrape, serve_metrics
from workers.census import oldest_enqueued, oldest_wait_s

HOUR_AGO = "2020-01-01T00:00:00.000000Z"


def _fill(conn: redis.Redis, start: int, stop: int) -> None:
    """Result-like keys ``rq:results:fill-<i>`` for i in [start, stop): what a day of finished jobs leaves."""
    with conn.pipeline(transaction=False) as pipe:
        for i in range(start, stop, 1000):
            pipe.mset({f"rq:results:fill-{j}": "x" for j in range(i, min(i + 1000, stop))})
        pipe.execute()


def _scrape_cost(conn: redis.Redis, port: int) -> tuple[dict[str, int], int, dict]:
    """Commands (name -> calls) and keys looked up by one scrape, and what it showed."""
    conn.config_resetstat()
    shown = scrape(port)
    stats = conn.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    for own in ("config|resetstat", "info", "config"):
        calls.pop(own, None)
    keyspace = conn.info("stats")
    return calls, int(keyspace["keyspace_hits"]) + int(keyspace["keyspace_misses"]), shown


def test_scrape_cost_stays_flat_from_1k_to_200k_result_keys(settings, procs: Processes, conn: redis.Redis) -> None:
    worker = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    assert [r.get(timeout=15) for r in ot.double.enqueue_many([(i,) for i in range(5)])] == [0, 2, 4, 6, 8]
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, procs.log(worker)  # its commands would blur the counts
    port = serve_metrics(procs)

    _fill(conn, 0, 1_000)
    small_calls, small_keys, small = _scrape_cost(conn, port)
    _fill(conn, 1_000, 200_000)
    assert conn.dbsize() > 200_000
    big_calls, big_keys, big = _scrape_cost(conn, port)

    assert "scan" not in big_calls and "keys" not in big_calls, big_calls
    assert big_calls == small_calls, f"a scrape at 200k keys ran {big_calls}, at 1k {small_calls}"
    assert big_keys == small_keys, f"a scrape at 200k keys touched {big_keys} keys, at 1k {small_keys}"
    assert sum(big_calls.values()) < 100  # a handful of queues and one task
    task = (("task", ot.double.name),)
    assert small["taskrail_jobs_completed_total"][task] == big["taskrail_jobs_completed_total"][task] == 5


def test_oldest_wait_sees_the_job_behind_a_prioritized_one(settings, procs: Processes, conn: redis.Redis) -> None:
    waiting = ot.double.delay(1)  # no worker: it waits
    conn.hset(f"rq:job:{waiting.id}", "enqueued_at", HOUR_AGO)
    urgent = ot.double.apply_async((2,), priority=0)  # goes in front of it
    assert run_order(conn, "obs") == [urgent.id, waiting.id]

    assert oldest_wait_s(conn, "obs") > 3600  # what `taskrail supervise` autoscales on
    port = serve_metrics(procs)
    m = scrape(port)
    assert m["taskrail_queue_oldest_job_age_seconds"][(("queue", "obs"),)] > 3600
    assert m["taskrail_leader_up"][()] == 0 and m["taskrail_queue_workers"][(("queue", "obs"),)] == 0  # no worker


def test_oldest_enqueued_finds_the_first_job_of_every_priority(settings, conn: redis.Redis) -> None:
    stamps = {0: "2026-01-01T00:00:30.000000Z", 5: "2026-01-01T00:00:20.000000Z", 9: "2026-01-01T00:00:10.000000Z"}
    for priority in (9, 5, 0, 9, 5, 0, 2):  # several per priority, each behind the first of its priority
        result = ot.double.apply_async((priority,), priority=priority)
        conn.hset(f"rq:job:{result.id}", "enqueued_at", stamps.get(priority, "2026-01-01T00:00:40.000000Z"))
        stamps[priority] = "2026-01-01T00:00:50.000000Z"  # later ones are younger
    order = [conn.hget(f"rq:job:{j}", "tr_priority") for j in run_order(conn, "obs")]
    assert order[-2:] == [b"9", b"9"], order  # the oldest job sits at the back
    oldest = oldest_enqueued(conn, ["obs", "empty"])
    assert oldest == {"obs": 1767225610.0}  # 2026-01-01T00:00:10Z: the first priority-9 job


def test_the_gauges_alerts_need(settings, procs: Processes, conn: redis.Redis) -> None:
    """Delayed, running, paused, workers per queue, leader present, last periodic firing."""
    procs.worker("obs", env=OBS)
    wait_for(lambda: conn.exists("taskrail:leader"), 15, what="a leader")
    napping = ot.nap.delay(30)
    wait_for(lambda: napping.state == "STARTED", 15, what="a running job")
    ot.double.apply_async((1,), countdown=3600)
    pause("idle")
    conn.hset("taskrail:periodic", "nightly-report", repr(1767225600.0))  # as workers/periodic.py writes it
    m = scrape(serve_metrics(procs))
    obs, idle = (("queue", "obs"),), (("queue", "idle"),)
    assert m["taskrail_queue_delayed_jobs"][obs] == 1 and m["taskrail_queue_running_jobs"][obs] == 1
    assert m["taskrail_queue_paused"][obs] == 0 and m["taskrail_queue_paused"][idle] == 1
    assert m["taskrail_queue_workers"][obs] == 1 and m["taskrail_queue_workers"][idle] == 0
    assert m["taskrail_leader_up"][()] == 1
    assert m["taskrail_periodic_last_fire_timestamp_seconds"][(("entry", "nightly-report"),)] == 1767225600.0


def _load(port: int, queue: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/scale/{queue}", timeout=10) as reply:
        assert reply.headers["Content-Type"] == "application/json"
        return dict(json.loads(reply.read()))


def test_keda_load_counts_claimed_jobs_and_holds_for_pause_and_rate(settings, procs: Processes,
                                                                    conn: redis.Redis) -> None:  # fmt: skip
    limits = {"TASKRAIL_QUEUE_RATE_LIMITS": "obs=3/m"}  # what the rendered metrics Deployment gets from the profile
    port = serve_metrics(procs, env=limits)
    ot.nap.delay(3)
    for i in range(3):
        ot.double.delay(i)  # no worker yet: all four wait
    assert _load(port, "obs") == {"queue": "obs", "waiting": 4, "claimed": 0, "paused": False,
                                  "rate_limited": False, "load": 4}  # fmt: skip
    pause("obs")
    assert _load(port, "obs")["load"] == 0  # a paused queue does not grow: KEDA takes it to its min
    resume("obs")

    procs.worker("obs", env={**OBS, **limits})
    busy = wait_for(lambda: (lambda m: m if m["claimed"] else None)(_load(port, "obs")), 30, what="a claimed job")
    assert busy["load"] == busy["waiting"] + busy["claimed"] and not busy["rate_limited"]  # type: ignore[index]
    # Three starts use up the window: the last double waits, and more workers would only wait with it.
    wait_for(lambda: conn.llen("rq:queue:obs") == 1 and conn.zcard("rq:wip:obs") == 0, 30, what="three jobs run")
    assert _load(port, "obs") == {"queue": "obs", "waiting": 1, "claimed": 0, "paused": False,
                                  "rate_limited": True, "load": 0}  # fmt: skip
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        assert b"taskrail_queue_depth" in reply.read()  # the same server still serves Prometheus
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/scale/", timeout=10)
        raise AssertionError("no queue name must be a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and b"/scale/<queue>" in exc.read()
