"""Correctness under speed: batching and concurrency on, every job runs exactly once and RQ agrees."""

from __future__ import annotations

import signal

import redis
from rq import Queue
from rq.registry import FinishedJobRegistry, StartedJobRegistry

from tasks import pause, resume
from tasks.core.scripting import load_command
from tests import tasks_speed
from tests.conftest import Processes, wait_for

SPEED = {"TASKRAIL_IMPORTS": "tests.tasks_speed"}


def drained(conn: redis.Redis, total: int) -> bool:
    return conn.hlen("executions") == total and conn.llen("rq:queue:speed") == 0 and conn.zcard("rq:wip:speed") == 0


def test_20000_jobs_run_exactly_once_with_batching_and_threads(settings, procs: Processes, conn: redis.Redis) -> None:
    total = 20_000
    tasks_speed.count.enqueue_many([(n,) for n in range(total)])
    procs.worker("speed", env=SPEED)
    procs.worker("speed", env={**SPEED, "TASKRAIL_CONCURRENCY": "8"})
    wait_for(lambda: drained(conn, total), 120, interval=0.2, what="20,000 jobs to finish")
    counts = {int(v) for v in conn.hvals("executions")}
    assert counts == {1}
    queue = Queue("speed", connection=conn)
    assert queue.count == 0
    assert FinishedJobRegistry(queue=queue).count == total  # what rq info and rq-dashboard read
    assert StartedJobRegistry(queue=queue).count == 0


def test_single_worker_keeps_fifo_order(settings, procs: Processes, conn: redis.Redis) -> None:
    tasks_speed.ordered.enqueue_many([(n,) for n in range(2000)])
    procs.worker("speed", env=SPEED)
    wait_for(lambda: conn.llen("order") == 2000, 60, what="ordered jobs")
    assert [int(n) for n in conn.lrange("order", 0, -1)] == list(range(2000))


def test_sigkilled_batching_worker_loses_no_job(settings, procs: Processes, conn: redis.Redis) -> None:
    total = 3000
    tasks_speed.slowish.enqueue_many([(n,) for n in range(total)])
    victim = procs.worker(
        "speed", env={**SPEED, "TASKRAIL_HEARTBEAT_TTL_S": "3", "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5"}
    )
    wait_for(lambda: conn.hlen("executions") > 300, 60, what="the victim to get going")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # Read after the kill, before any other worker runs: nobody can reap the victim's claims yet.
    held = conn.hlen(f"taskrail:claims:{_name(conn, victim.pid)}")
    assert held > 0, "the victim held no claim when killed: the test would prove nothing"
    procs.worker("speed", env={**SPEED, "TASKRAIL_HEARTBEAT_TTL_S": "3", "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5"})
    wait_for(lambda: drained(conn, total), 120, interval=0.2, what="every job after the kill")
    counts = [int(v) for v in conn.hvals("executions")]
    assert len(counts) == total and min(counts) == 1
    # At-least-once: only jobs the victim held (claimed, maybe run, never settled) may have run twice.
    assert sum(c - 1 for c in counts) <= held


def _name(conn: redis.Redis, pid: int) -> str:
    for key in conn.scan_iter("rq:worker:*"):
        if conn.hget(key, "pid") == str(pid).encode():
            return key.decode().split(":", 2)[2]
    return ""


def test_script_cache_flushes_lose_no_claim(settings, procs: Processes, conn: redis.Redis) -> None:
    total = 3000
    tasks_speed.count.enqueue_many([(n,) for n in range(total)])
    worker = procs.worker("speed", env=SPEED)
    wait_for(lambda: conn.hlen("executions") > 0, 60, what="the worker to run its first jobs")
    conn.config_resetstat()
    flushes = 0
    claim_sha = load_command("claim").sha
    while not drained(conn, total):
        conn.script_flush()  # as after a server restart: every script must be loaded again
        flushes += 1
        # The worker's next claim sends the script anew: wait for it, so every flush is exercised.
        wait_for(lambda: conn.script_exists(claim_sha)[0] or drained(conn, total), 30, what="a claim after the flush")
    # Each claim after a flush went to the server with its source (EVAL), as scripting.LuaScript does.
    resent = conn.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)
    assert flushes >= 5 and resent >= flushes - 1  # the last flush may come after the last claim
    assert {int(v) for v in conn.hvals("executions")} == {1}
    assert "never received" not in procs.log(worker)


def test_a_claim_whose_reply_was_lost_goes_back_to_the_queue(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("speed", env=SPEED)
    name = wait_for(lambda: next(iter(conn.smembers("taskrail:workers")), None), 15, what="worker").decode()
    pause("speed")  # so the live worker cannot take the job before the test plays the lost claim
    [job] = tasks_speed.count.enqueue_many([(1,)])
    # What a claim does on the server, without the worker ever seeing the reply:
    assert conn.lrem("rq:queue:speed", 1, job.id) == 1
    conn.hset(f"rq:job:{job.id}", "status", "started")
    conn.hset(f"taskrail:claims:{name}", job.id, "speed")
    conn.zadd("rq:wip:speed", {f"{job.id}:{name}": 9e9})
    resume("speed")
    wait_for(lambda: conn.hget("executions", "1") == b"1", 30, what="the orphaned claim to run")
    assert job.get(timeout=10) is None
    assert conn.hlen(f"taskrail:claims:{name}") == 0
