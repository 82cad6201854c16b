"""The threads mode (``concurrency`` above 1) on real ``rq worker -w workers.Worker`` processes: the slot threads
share one claim/settle stream (workers/threads.py), so more threads never cost a round trip per job."""

from __future__ import annotations

import signal
import subprocess

import redis
from rq.suspension import resume, suspend

from tasks.core import keys
from tests import tasks_threads as t
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.test_rq_worker_ops import stays

ENV = {"TASKRAIL_IMPORTS": "tests.tasks_threads"}


def _worker(procs: Processes, conn: redis.Redis, concurrency: int, *args: str, name: str = "thr1",
            **env: str) -> subprocess.Popen[bytes]:  # fmt: skip
    proc = procs.start([str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq", "--name", name, *args,
                        t.QUEUE], env={**ENV, "TASKRAIL_CONCURRENCY": str(concurrency), **env}, name=name)  # fmt: skip
    if "--burst" not in args:
        wait_for(lambda: name in live_workers(conn), 15, what="worker heartbeat")
    return proc


def _script_calls(conn: redis.Redis) -> int:
    stats = conn.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval", "fcall"))


def _runs(conn: redis.Redis) -> dict[bytes, bytes]:
    return conn.hgetall(t.RUNS_KEY)


def test_50_threads_run_short_jobs_exactly_once_in_batched_round_trips(settings, procs: Processes,
                                                                        conn: redis.Redis) -> None:  # fmt: skip
    jobs = 3000
    results = t.count.enqueue_many([(i,) for i in range(jobs)])
    scripts_before = _script_calls(conn)
    _worker(procs, conn, 50)
    wait_for(lambda: conn.zcard(keys.FINISHED.format(t.QUEUE)) >= jobs, 60, interval=0.2, what=f"{jobs} jobs")
    runs = _runs(conn)
    assert {r.id.encode() for r in results} == set(runs) and set(runs.values()) == {b"1"}  # each once
    assert sorted(r.get(timeout=5) for r in results[:50]) == list(range(50))
    # One stream for the 50 threads: claims and settles carry many jobs each (one thread each: 2 per job).
    assert _script_calls(conn) - scripts_before < jobs / 4


def test_a_job_enqueued_while_every_other_slot_blocks_starts_at_once(settings, procs: Processes,
                                                                    conn: redis.Redis) -> None:  # fmt: skip
    _worker(procs, conn, 3)
    blocked = [t.blocking.delay(f"gate:{i}") for i in range(2)]
    wait_for(lambda: all(r.state == "STARTED" for r in blocked), 10, what="two blocking jobs started")
    # the third slot is free and the queues are empty: the wait thread claims the new job as it arrives
    assert t.count.delay(7).get(timeout=10) == 7
    assert [r.state for r in blocked] == ["STARTED", "STARTED"]
    for i in range(2):
        conn.rpush(f"gate:{i}", 1)
    names = {r.get(timeout=10) for r in blocked}
    assert len(names) == 2 and all(n.startswith("taskrail-slot-") for n in names)  # two slot threads at once


def test_sigterm_lets_running_jobs_finish_and_hands_back_the_claimed_rest_in_order(settings, procs: Processes,
                                                                                   conn: redis.Redis) -> None:  # fmt: skip
    proc = _worker(procs, conn, 2)
    blocked = [t.blocking.delay(f"gate:{i}") for i in range(2)]
    wait_for(lambda: all(r.state == "STARTED" for r in blocked), 10, what="both slots busy")
    queued = t.count.enqueue_many([(i,) for i in range(5)])
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: conn.hexists("rq:worker:thr1", "shutdown_requested_date"), 5, what="the stop recorded")
    for i in range(2):
        conn.rpush(f"gate:{i}", 1)
    assert proc.wait(timeout=15) == 0, procs.log(proc)
    assert [r.state for r in blocked] == ["SUCCESS", "SUCCESS"]
    assert conn.lrange(keys.QUEUE.format(t.QUEUE), 0, -1) == [r.id.encode() for r in queued]  # none ran, in order
    assert not _runs(conn) and conn.hlen(keys.CLAIMS.format("thr1")) == 0


def test_a_burst_worker_runs_what_is_queued_then_exits_holding_nothing(settings, procs: Processes,
                                                                       conn: redis.Redis) -> None:  # fmt: skip
    results = t.count.enqueue_many([(i, 0.01 * (i % 3)) for i in range(60)])
    proc = _worker(procs, conn, 8, "--burst", name="burst")
    assert proc.wait(timeout=30) == 0, procs.log(proc)
    assert [r.state for r in results] == ["SUCCESS"] * 60 and len(_runs(conn)) == 60
    assert conn.hlen(keys.CLAIMS.format("burst")) == 0 and not conn.sismember(keys.WORKERS, "burst")


def test_max_jobs_runs_exactly_that_many_then_exits(settings, procs: Processes, conn: redis.Redis) -> None:
    results = t.count.enqueue_many([(i,) for i in range(40)])
    proc = _worker(procs, conn, 4, "--max-jobs", "10")
    assert proc.wait(timeout=30) == 0, procs.log(proc)
    assert len(_runs(conn)) == 10 and sum(r.state == "SUCCESS" for r in results) == 10
    assert conn.llen(keys.QUEUE.format(t.QUEUE)) == 30 and conn.hlen(keys.CLAIMS.format("thr1")) == 0


def test_a_suspended_worker_claims_nothing_until_resumed(settings, procs: Processes, conn: redis.Redis) -> None:
    _worker(procs, conn, 4)
    suspend(conn)
    wait_for(lambda: conn.hget("rq:worker:thr1", "state") == b"suspended", 10, what="suspended state")
    held = t.count.delay(1)
    stays(lambda: held.state == "PENDING", 0.5, "a suspended worker claimed a job")
    assert conn.hget("rq:worker:thr1", "state") == b"suspended"
    resume(conn)
    assert held.get(timeout=10) == 1
