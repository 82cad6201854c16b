"""Prometheus metrics: scrape ``taskrail metrics`` (a real process) and parse with prometheus-client's parser."""

from __future__ import annotations

import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from config.embedded import free_port
from tasks import TaskFailed
from tests import tasks_observe as ot
from tests.conftest import BIN, Processes, live_workers, wait_for
from workers.metrics import duration_percentiles, percentiles_from_buckets
from workers.runner import BUCKET_LABELS

# A heartbeat every 0.5 s that expires 3 s after the last one: a killed worker's key lapses by TTL within seconds.
OBS = {
    "TASKRAIL_IMPORTS": "tests.tasks_observe",
    "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5",
    "TASKRAIL_HEARTBEAT_TTL_S": "3",
}


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}"""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def serve_metrics(procs: Processes, env: dict[str, str] | None = None) -> int:
    port = free_port()
    proc = procs.start([str(BIN / "taskrail"), "metrics", "--port", str(port)], name="metrics", env=env)

    def up() -> bool:
        try:
            scrape(port)
        except OSError:
            assert proc.poll() is None, procs.log(proc)
            return False
        return True

    wait_for(up, 20, what="the metrics endpoint")
    return port


def test_scraped_metrics_show_the_counts_that_happened(settings, procs: Processes, conn: redis.Redis) -> None:
    worker = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    assert [r.get(timeout=15) for r in ot.double.enqueue_many([(i,) for i in range(5)])] == [0, 2, 4, 6, 8]
    with pytest.raises(TaskFailed):
        ot.charge.delay("1", 2).get(timeout=15)
    assert ot.fails_once.delay("k").get(timeout=15) == 2
    napping = ot.nap.delay(30)
    wait_for(lambda: napping.state == "STARTED", 15, what="a busy worker")
    waiting = ot.double.enqueue_many([(i,) for i in range(3)])  # behind the nap: queued
    conn.hset(f"rq:job:{waiting[0].id}", "enqueued_at", "2020-01-01T00:00:00.000000Z")  # an old head job

    port = serve_metrics(procs)
    m = scrape(port)
    task = (("task", ot.double.name),)
    assert m["taskrail_jobs_completed_total"][task] == 5
    assert m["taskrail_jobs_failed_total"][(("task", ot.charge.name),)] == 1
    assert m["taskrail_jobs_retried_total"][(("task", ot.fails_once.name),)] == 1
    assert m["taskrail_jobs_completed_total"][(("task", ot.fails_once.name),)] == 1
    assert m["taskrail_job_duration_seconds_count"][task] == 5
    assert m["taskrail_job_duration_seconds_bucket"][(("le", "+Inf"), ("task", ot.double.name))] == 5
    assert 0 < m["taskrail_job_duration_seconds_sum"][task] < 5
    assert m["taskrail_queue_depth"][(("queue", "obs"),)] == 3
    assert m["taskrail_queue_oldest_job_age_seconds"][(("queue", "obs"),)] > 3600
    assert m["taskrail_queue_failed_jobs"][(("queue", "obs"),)] == 1
    assert m["taskrail_workers"][()] == 1 and m["taskrail_workers_busy"][()] == 1
    assert m["taskrail_redis_up"][()] == 1

    dead = worker_name(conn)
    assert 0 < conn.pttl(f"taskrail:hb:{dead}") <= 3000  # the short TTL above, not the default 6 s
    worker.kill()
    worker.wait(timeout=10)
    # Nobody deletes the key: the server expires it, and the scrape must follow.
    wait_for(lambda: scrape(port)["taskrail_workers"][()] == 0, 15, what="the dead worker's heartbeat to expire")
    assert conn.exists(f"taskrail:hb:{dead}") == 0
    m = scrape(port)
    assert m["taskrail_workers"][()] == 0 and m["taskrail_workers_busy"][()] == 0
    procs.worker("obs", env=OBS)  # becomes the leader and hands the nap back: one stall
    wait_for(lambda: napping.state == "STARTED" and conn.hget(f"rq:job:{napping.id}", "tr_stalls") == b"1", 30,
             what="the nap recovered and running again")  # fmt: skip
    m = scrape(port)
    assert m["taskrail_jobs_stalled_total"][(("task", ot.nap.name),)] == 1
    assert m["taskrail_workers"][()] == 1 and m["taskrail_workers_busy"][()] == 1


def worker_name(conn: redis.Redis) -> str:
    [name] = conn.smembers("taskrail:workers")
    return name.decode()


def test_percentiles_from_buckets() -> None:
    counts = [0] * len(BUCKET_LABELS)
    counts[BUCKET_LABELS.index("b:0.01")] = 50  # (0.005, 0.01]
    counts[BUCKET_LABELS.index("b:1")] = 45  # (0.5, 1]
    counts[BUCKET_LABELS.index("b:+Inf")] = 5
    assert percentiles_from_buckets(counts, 0.5) == pytest.approx(0.01)
    assert percentiles_from_buckets(counts, 0.95) == pytest.approx(1.0)
    assert percentiles_from_buckets(counts, 0.99) == 300.0  # in +Inf: the highest finite bound
    assert percentiles_from_buckets([0] * len(BUCKET_LABELS), 0.5) == 0.0


def test_duration_percentiles_per_task(settings, conn: redis.Redis) -> None:
    conn.hset("taskrail:taskstats:t.fast", mapping={"b:0.005": 99, "b:0.01": 1, "completed": 100, "sum_us": 300000})
    conn.hset("taskrail:taskstats:t.never", mapping={"retried": 3})
    conn.sadd("taskrail:tasks", "t.fast", "t.never")  # the index the worker scripts keep
    p50, p95, p99 = duration_percentiles(conn)["t.fast"]
    assert p50 == pytest.approx(0.0025, rel=0.05) and p95 == pytest.approx(0.0048, rel=0.01)
    assert p99 == pytest.approx(0.005)
    assert "t.never" not in duration_percentiles(conn)


def test_statistics_older_than_the_task_index_are_found_once(settings, conn: redis.Redis) -> None:
    # A server upgraded from before the index: statistics but no taskrail:tasks. One SCAN fills it, then never again.
    conn.hset("taskrail:taskstats:t.old", mapping={"b:0.005": 10, "completed": 10, "sum_us": 30000})
    conn.config_resetstat()
    assert "t.old" in duration_percentiles(conn)
    assert "t.old" in duration_percentiles(conn)
    scans = conn.info("commandstats").get("cmdstat_scan", {}).get("calls", 0)
    assert scans == 1 and conn.sismember("taskrail:tasks", "t.old")
