"""Stopping a worker with signals: SIGTERM and SIGINT stop it wherever it waits, however often they come.

The worker's signal handler runs on the main thread between any two bytecodes, maybe while that
thread holds a lock; it takes none (workers/waker.py). Every test runs real ``rq worker -w
workers.Worker`` processes (or, for the landings, the real Worker in a process of its own) against a
real server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq.suspension import suspend

from tests import tasks_recovery as rt
from tests.conftest import Processes, live_workers, wait_for
from tests.test_recovery import FAST, assert_nothing_failed, completions, field, start_live, starts

LANDINGS_S = 60.0  # the landing process's deadline: it hangs where a handler could hang a worker
MODES = {
    "main-thread": {"TASKRAIL_CONCURRENCY": "1"},
    "threads": {"TASKRAIL_CONCURRENCY": "3"},
    "asyncio": {"TASKRAIL_CONCURRENCY": "3", "TASKRAIL_POOL": "asyncio"},
}


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def assert_no_claims(conn: redis.Redis) -> None:
    held = {k.decode(): conn.hgetall(k) for k in conn.scan_iter("taskrail:claims:*")}
    assert not any(held.values()), held


def test_a_stop_signal_landing_on_any_line_of_the_stop_paths_is_handled(procs: Processes) -> None:
    """SIGTERM raised at each line of the suspended wait and of the handler itself (a second, a third signal)."""
    proc = procs.start([sys.executable, "-m", "tests.signal_landing", "landing"], name="landing")
    try:
        code = proc.wait(timeout=LANDINGS_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a signal handler hung the process; it got as far as:\n{procs.log(proc)}")
    assert code == 0, procs.log(proc)
    landed = dict(line.split() for line in procs.log(proc).splitlines())
    assert set(landed) == {"suspended-wait", "first-stop", "second-stop"}, landed
    assert all(int(n) >= 3 for n in landed.values()), landed


@pytest.mark.parametrize("mode", MODES)
def test_a_suspended_worker_stops_on_sigterm(settings, procs: Processes, conn: redis.Redis, mode: str) -> None:
    worker = start_live(procs, conn, "paused", "rec", env={**FAST, **MODES[mode]})
    suspend(conn)
    wait_for(lambda: conn.hget("rq:worker:paused", "state") == b"suspended", 10, what="the suspended state")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, procs.log(worker)
    assert "stop requested" in procs.log(worker)
    assert "paused" not in live_workers(conn)


def test_a_suspended_worker_stops_on_sigint_and_on_sigterms_in_a_row(settings, procs: Processes,
                                                                      conn: redis.Redis) -> None:  # fmt: skip
    first = start_live(procs, conn, "ctrl-c", "rec", env=FAST)
    second = start_live(procs, conn, "many", "rec", env=FAST)
    suspend(conn)
    wait_for(lambda: conn.hget("rq:worker:many", "state") == b"suspended", 10, what="the suspended state")
    first.send_signal(signal.SIGINT)
    for _ in range(50):
        second.send_signal(signal.SIGTERM)
    assert first.wait(timeout=15) == 0, procs.log(first)
    assert second.wait(timeout=15) == 0, procs.log(second)
    assert not live_workers(conn) & {"ctrl-c", "many"}


@pytest.mark.parametrize("mode", ["main-thread", "threads"])
def test_repeated_sigterms_requeue_the_running_job_and_stop_the_worker(settings, procs: Processes,
                                                                       conn: redis.Redis, mode: str) -> None:  # fmt: skip
    env = {**FAST, **MODES[mode], "TASKRAIL_SHUTDOWN_TIMEOUT_S": "60"}
    worker = start_live(procs, conn, "impatient", "rec", env=env)
    # One blocking sleep on the main thread (only a signal ends it early); short steps on a thread.
    result = rt.one_sleep.delay(60.0) if mode == "main-thread" else rt.long_job.delay(60.0)
    wait_for(lambda: starts(conn, result.id), 20, what="the job running")
    for _ in range(20):  # many may merge into one delivery: the first stop at least
        worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stop requested" in procs.log(worker), 10, what="the first stop")
    # as RQ's worker records it (maintenance writes it for the handler); the server then claims nothing more
    wait_for(lambda: conn.hexists("rq:worker:impatient", "shutdown_requested_date"), 5, what="RQ's record of it")
    for _ in range(20):  # the second and later ones, even inside the handler of another
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, procs.log(worker)
    assert "second stop signal" in procs.log(worker)
    assert field(conn, result.id, "status") == "queued"
    assert conn.lindex("rq:queue:rec", 0).decode() == result.id
    assert completions(conn, result.id) == 0
    assert_nothing_failed(conn)
    assert_no_claims(conn)


@pytest.mark.parametrize("mode", ["main-thread", "threads"])
def test_sigterm_in_a_burst_of_jobs_runs_each_exactly_once(settings, procs: Processes, conn: redis.Redis,
                                                           tmp_path: Path, mode: str) -> None:  # fmt: skip
    done = tmp_path / "done.txt"
    tags = [str(i) for i in range(300)]
    for tag in tags:
        rt.to_file.delay(str(done), tag, 0.005)
    worker = start_live(procs, conn, "bursting", "rec", env={**FAST, **MODES[mode]})
    wait_for(lambda: len(lines(done)) >= 30, 30, what="some jobs done")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, procs.log(worker)
    ran = lines(done)
    assert len(ran) < len(tags), "the worker ran the whole burst after its SIGTERM"
    assert len(set(ran)) == len(ran), "a job ran twice"
    assert conn.llen("rq:queue:rec") == len(tags) - len(ran)
    assert_no_claims(conn)

    start_live(procs, conn, "finisher", "rec", env=FAST)
    wait_for(lambda: len(lines(done)) >= len(tags), 60, what="the rest of the burst")
    wait_for(lambda: not conn.llen("rq:queue:rec"), 10, what="an empty queue")
    assert sorted(lines(done), key=int) == tags
    assert_nothing_failed(conn)


def test_sigterms_all_through_a_burst_of_jobs_lose_none(settings, procs: Processes, conn: redis.Redis,
                                                        tmp_path: Path) -> None:  # fmt: skip
    """Three stop signals after some jobs, worker after worker: every job runs, none fails, no claim is left."""
    done = tmp_path / "done.txt"
    tags = [str(i) for i in range(200)]
    for tag in tags:
        rt.to_file.delay(str(done), tag, 0.005)
    for round_ in range(8):
        worker = start_live(procs, conn, f"round{round_}", "rec", env={**FAST, **MODES["threads"]})
        seen = len(lines(done))
        wait_for(lambda seen=seen: len(lines(done)) > seen or not conn.llen("rq:queue:rec"), 30, what="a job done")
        for _ in range(3):
            worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0, procs.log(worker)
        assert_no_claims(conn)
    start_live(procs, conn, "finisher", "rec", env=FAST)
    wait_for(lambda: set(lines(done)) == set(tags), 60, what="every job run")
    wait_for(lambda: not conn.llen("rq:queue:rec"), 10, what="an empty queue")
    assert_nothing_failed(conn)  # each ran at least once: a job stopped just after its write runs again
