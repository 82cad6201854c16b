"""Never lose a job: SIGKILLed workers, warm shutdown with a deadline, time limits, a server restart.

Every test runs real ``rq worker -w workers.Worker`` processes against a real server. Workers here
use a 3 s heartbeat TTL (beats every 0.5 s), so a dead worker's jobs come back within about 3.5 s.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config import load_settings
from config.embedded import EmbeddedServer, free_port, start_server
from tasks import Client, TaskFailed
from tests import tasks_recovery as rt
from tests.conftest import Processes, live_workers, wait_for

FAST = {
    "TASKRAIL_IMPORTS": "tests.tasks_recovery",
    "TASKRAIL_HEARTBEAT_TTL_S": "3",
    "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5",
}
RECOVERY_PASS_S = 15.0  # the pass mark: a dead worker's job runs again within 15 s
FIGURES = Path(__file__).resolve().parent.parent / ".taskrail" / "recovery-figures.json"


def starts(conn: redis.Redis, job_id: str) -> list[tuple[float, int]]:
    """(unix time, pid) of every start of a job, oldest first."""
    out = []
    for raw in conn.lrange(f"rec:starts:{job_id}", 0, -1):
        at, pid = raw.decode().split()
        out.append((float(at), int(pid)))
    return out


def completions(conn: redis.Redis, job_id: str) -> int:
    return int(conn.get(f"rec:done:{job_id}") or 0)


def field(conn: redis.Redis, job_id: str, name: str) -> str:
    value = conn.hget(f"rq:job:{job_id}", name)
    return value.decode() if value is not None else ""


def retries(conn: redis.Redis, job_id: str) -> int:
    return int(field(conn, job_id, "tr_retries") or 0)


def start_live(procs: Processes, conn: redis.Redis, name: str, *queues: str, env: dict[str, str]):
    proc = procs.worker(*queues, name=name, env=env)
    wait_for(lambda: name in live_workers(conn) or proc.poll() is not None, 30, what=f"worker {name} heartbeat")
    assert proc.poll() is None, procs.log(proc)
    return proc


def kill(proc) -> float:
    """SIGKILL a worker; returns the moment it died."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    return time.time()


def assert_nothing_failed(conn: redis.Redis, queue: str = "rec") -> None:
    assert conn.zcard(f"rq:failed:{queue}") == 0, conn.zrange(f"rq:failed:{queue}", 0, -1)
    failed = [k for k in conn.scan_iter("taskrail:taskstats:*") if int(conn.hget(k, "failed") or 0)]
    assert not failed, failed


# ---- SIGKILL ------------------------------------------------------------------------------------


def _running_on(conn: redis.Redis, worker: str, pid: int, for_s: float) -> list[str]:
    """Jobs ``worker`` holds, if at least one has been running on it for ``for_s`` seconds."""
    held = [h.decode() for h in conn.hkeys(f"taskrail:claims:{worker}")]
    now = time.time()
    for job_id in held:
        mine = [at for at, p in starts(conn, job_id) if p == pid]
        if mine and now - mine[-1] >= for_s:
            return held
    return []


def test_sigkill_mid_jobs_20_times_every_job_completes_once_within_15s(settings, procs: Processes,
                                                                       conn: redis.Redis) -> None:  # fmt: skip
    # max_batch 1: each thread holds only the job it runs (long jobs); max_stalled 50: a job may be
    # caught by several of the 20 kills and must still complete (the stalled limit has its own test).
    # A 1.5 s heartbeat TTL: each of the 20 rounds waits for the last victim's recovery, so the TTL sets the pace.
    env = {**FAST, "TASKRAIL_HEARTBEAT_TTL_S": "1.5", "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.25",
           "TASKRAIL_MAX_BATCH": "1", "TASKRAIL_MAX_STALLED": "50"}  # fmt: skip
    start_live(procs, conn, "steady", "rec", env={**env, "TASKRAIL_CONCURRENCY": "4"})
    job_ids: list[str] = []
    kills: list[tuple[float, list[str]]] = []
    for round_ in range(20):
        name = f"victim-{round_}"
        victim = start_live(procs, conn, name, "rec", env={**env, "TASKRAIL_CONCURRENCY": "20"})
        if kills:  # the last victim's jobs are back and taken (mostly by this victim) before new ones come
            wait_for(lambda: not conn.exists(f"taskrail:claims:victim-{round_ - 1}"), 30, what="recovery")  # noqa: B023
        unfinished = sum(1 for j in job_ids if not completions(conn, j))
        job_ids += [r.id for r in rt.long_job.enqueue_many([(1.5,)] * max(0, 24 - unfinished))]  # 20 + 4 slots busy
        in_the_middle = functools.partial(_running_on, conn, name, victim.pid, 0.3)
        wait_for(in_the_middle, 30, what=f"{name} in the middle of a job")
        killed_at = kill(victim)
        kills.append((killed_at, [h.decode() for h in conn.hkeys(f"taskrail:claims:{name}")]))
    start_live(procs, conn, "drainer", "rec", env={**env, "TASKRAIL_CONCURRENCY": "20"})

    wait_for(lambda: all(completions(conn, j) for j in job_ids), 180, interval=0.5, what="every job completed")
    assert [j for j in job_ids if completions(conn, j) != 1] == [], "a job ran to completion twice"
    assert {field(conn, j, "status") for j in job_ids} == {"finished"}
    assert {retries(conn, j) for j in job_ids} == {0}, "a recovery used up a retry"
    assert_nothing_failed(conn)
    assert conn.zcard("rq:wip:rec") == 0 and not list(conn.scan_iter("taskrail:claims:victim-*"))

    recovery_s = []
    for killed_at, held in kills:
        assert held, "a victim held no job when it was killed"
        for job_id in held:
            again = [at for at, _pid in starts(conn, job_id) if at > killed_at]
            assert again, f"job {job_id} never started again after the kill at {killed_at}"
            recovery_s.append(again[0] - killed_at)
    figures = {
        "kills": len(kills),
        "jobs": len(job_ids),
        "jobs_held_at_kills": [len(h) for _k, h in kills],
        "recoveries": len(recovery_s),
        "recovery_s_min": round(min(recovery_s), 2),
        "recovery_s_median": round(sorted(recovery_s)[len(recovery_s) // 2], 2),
        "recovery_s_max": round(max(recovery_s), 2),
        "most_stalls_of_one_job": max(int(field(conn, j, "tr_stalls") or 0) for j in job_ids),
    }
    FIGURES.parent.mkdir(exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2))
    print("recovery figures:", figures)
    assert max(recovery_s) < RECOVERY_PASS_S, figures


def test_killed_only_worker_job_runs_again_on_the_next_worker(settings, procs: Processes,
                                                              conn: redis.Redis) -> None:  # fmt: skip
    first = start_live(procs, conn, "only-1", "rec", env=FAST)
    result = rt.long_first.delay(60.0, 0.5)
    wait_for(lambda: starts(conn, result.id), 20, what="first start")
    kill(first)
    assert field(conn, result.id, "status") == "started"  # nobody else could have noticed yet
    start_live(procs, conn, "only-2", "rec", env=FAST)
    assert result.get(timeout=30) == "done"
    assert len(starts(conn, result.id)) == 2 and completions(conn, result.id) == 1
    assert result.attempts == 2 and retries(conn, result.id) == 0
    assert field(conn, result.id, "tr_stalls") == "1"


def test_killed_worker_of_several_queues_gives_each_job_back_to_its_queue(settings, procs: Processes,
                                                                          conn: redis.Redis) -> None:  # fmt: skip
    env = {**FAST, "TASKRAIL_CONCURRENCY": "2", "TASKRAIL_MAX_BATCH": "1"}
    victim = start_live(procs, conn, "multi", "rec", "rec_b", env=env)
    in_a = rt.long_first.delay(60.0, 0.5)
    in_b = rt.long_first.apply_async((60.0, 0.5), queue="rec_b")
    wait_for(lambda: starts(conn, in_a.id) and starts(conn, in_b.id), 20, what="both jobs running")
    start_live(procs, conn, "survivor", "rec_b", "rec", env=env)
    kill(victim)
    assert in_a.get(timeout=30) == "done" and in_b.get(timeout=30) == "done"
    for result, queue in ((in_a, "rec"), (in_b, "rec_b")):
        assert completions(conn, result.id) == 1 and len(starts(conn, result.id)) == 2
        events = [e for _id, e in conn.xrange(f"taskrail:events:{queue}") if e[b"job"] == result.id.encode()]
        assert b"recovered" in [e[b"event"] for e in events], events


def test_job_stalling_more_than_max_stalled_fails_with_the_reason(settings, procs: Processes,
                                                                  conn: redis.Redis) -> None:  # fmt: skip
    result = rt.long_job.delay(60.0)  # max_stalled is 1 (the default): the second stall fails it
    for n in (1, 2):
        worker = start_live(procs, conn, f"stall-{n}", "rec", env=FAST)
        wait_for(lambda n=n: len(starts(conn, result.id)) == n, 30, what=f"start {n}")
        kill(worker)
    start_live(procs, conn, "stall-3", "rec", env=FAST)
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=30)
    assert info.value.exc_type == "JobStalled"
    assert "stalled 2 times" in info.value.message and "max_stalled is 1" in info.value.message
    assert conn.zscore("rq:failed:rec", result.id) is not None
    assert len(starts(conn, result.id)) == 2 and completions(conn, result.id) == 0
    events = [e[b"event"] for _id, e in conn.xrange("taskrail:events:rec") if e[b"job"] == result.id.encode()]
    assert events.count(b"stalled") == 2 and events[-1] == b"failed", events


def test_killed_work_horse_job_of_a_reject_on_worker_lost_task_runs_again(settings, procs: Processes,
                                                                          conn: redis.Redis) -> None:  # fmt: skip
    # Without reject_on_worker_lost the job fails (tests/test_isolation.py); a whole dead worker's jobs always rerun.
    worker = start_live(procs, conn, "forking", "rec", env={**FAST, "TASKRAIL_ISOLATION": "fork"})
    result = rt.long_first_rejected.delay(60.0, 0.5)
    first = wait_for(lambda: starts(conn, result.id), 20, what="first start")
    horse_pid = first[0][1]
    assert horse_pid != worker.pid, "with isolation 'fork' the job runs in a work-horse process"
    os.kill(horse_pid, signal.SIGKILL)
    assert result.get(timeout=30) == "done"
    assert worker.poll() is None, "the worker died with its work-horse"
    assert len(starts(conn, result.id)) == 2 and completions(conn, result.id) == 1
    assert retries(conn, result.id) == 0 and field(conn, result.id, "tr_stalls") == "1"
    events = [e[b"event"] for _id, e in conn.xrange("taskrail:events:rec") if e[b"job"] == result.id.encode()]
    assert events == [b"enqueued", b"started", b"stalled", b"started", b"completed"], events
    assert conn.hget(f"taskrail:taskstats:{rt.long_first_rejected.name}", "stalled") == b"1"


# ---- warm shutdown and time limits --------------------------------------------------------------


def test_sigterm_requeues_jobs_past_the_deadline_at_the_front_and_lets_short_ones_finish(
    settings, procs: Processes, conn: redis.Redis
) -> None:
    env = {**FAST, "TASKRAIL_CONCURRENCY": "3", "TASKRAIL_MAX_BATCH": "1", "TASKRAIL_SHUTDOWN_TIMEOUT_S": "1.5"}
    worker = start_live(procs, conn, "draining", "rec", env=env)
    longs = [rt.long_job.delay(5.0), rt.long_job.delay(5.0)]
    short = rt.gated_job.delay("rec:gate")  # ends when the test opens its gate: no thread frees before
    wait_for(lambda: all(starts(conn, r.id) for r in (*longs, short)), 20, what="three jobs running")
    waiting = [rt.long_job.delay(0.1) for _ in range(2)]
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stop requested" in procs.log(worker), 10, what="the worker to take the SIGTERM")
    conn.rpush("rec:gate", 1)  # the short job ends within the shutdown deadline, after the SIGTERM
    assert worker.wait(timeout=20) == 0, procs.log(worker)
    assert [completions(conn, r.id) for r in longs] == [0, 0], "the worker waited for the long jobs"
    assert completions(conn, short.id) == 1 and field(conn, short.id, "status") == "finished"
    queue = [j.decode() for j in conn.lrange("rq:queue:rec", 0, -1)]
    assert set(queue[:2]) == {r.id for r in longs} and queue[2:] == [r.id for r in waiting], queue
    assert {field(conn, r.id, "status") for r in (*longs, *waiting)} == {"queued"}
    assert_nothing_failed(conn)

    start_live(procs, conn, "restarted", "rec", env=env)
    for result in (*longs, *waiting):
        assert result.get(timeout=30) == "done"
        assert completions(conn, result.id) == 1
    assert [len(starts(conn, r.id)) for r in longs] == [2, 2]
    assert {retries(conn, r.id) for r in longs} == {0}
    assert_nothing_failed(conn)


def test_second_sigterm_interrupts_running_jobs_at_once(settings, procs: Processes, conn: redis.Redis) -> None:
    worker = start_live(procs, conn, "impatient", "rec", env={**FAST, "TASKRAIL_SHUTDOWN_TIMEOUT_S": "60"})
    result = rt.one_sleep.delay(60.0)  # one blocking sleep on the main thread: the signal path
    wait_for(lambda: starts(conn, result.id), 20, what="job running")
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stop requested" in procs.log(worker), 10, what="first signal handled")
    assert worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0, procs.log(worker)
    assert field(conn, result.id, "status") == "queued"
    assert conn.lindex("rq:queue:rec", 0).decode() == result.id
    assert completions(conn, result.id) == 0
    assert_nothing_failed(conn)


def test_time_limit_ends_a_long_job_as_task_timeout_and_retries_when_covered(settings, procs: Processes,
                                                                             conn: redis.Redis) -> None:  # fmt: skip
    start_live(procs, conn, "limited", "rec", env=FAST)
    covered = rt.overruns_retried.delay(30.0)
    plain = rt.overruns.delay(30.0)
    with pytest.raises(TaskFailed) as info:
        covered.get(timeout=30)
    assert info.value.exc_type == "TaskTimeout" and "failed after 1 retries" in info.value.message
    assert covered.attempts == 2 and len(starts(conn, covered.id)) == 2
    with pytest.raises(TaskFailed) as info:
        plain.get(timeout=30)
    assert info.value.exc_type == "TaskTimeout" and plain.attempts == 1
    stats = conn.hgetall(f"taskrail:taskstats:{rt.overruns_retried.name}")
    assert stats[b"retried"] == b"1" and stats[b"failed"] == b"1"


# ---- the server goes away -----------------------------------------------------------------------


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A private append-only server on a fixed port, so the test can restart it in place."""
    srv = start_server(tmp_path / "own-server", free_port())
    yield srv
    with contextlib.suppress(ProcessLookupError):
        os.kill(srv.pid, signal.SIGKILL)


def _stop(srv: EmbeddedServer) -> None:
    os.kill(srv.pid, signal.SIGTERM)  # a clean stop writes the append-only file
    wait_for(lambda: not Path(f"/proc/{srv.pid}").exists() or _zombie(srv.pid), 15, what="server exit")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_workers_survive_a_server_restart_and_no_acknowledged_job_is_lost(procs: Processes, env: dict[str, str],
                                                                          own_server: EmbeddedServer,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    url = own_server.url
    wenv = {"TASKRAIL_IMPORTS": "tests.tasks_recovery", "REDIS_URL": url, "TASKRAIL_CONCURRENCY": "4",
            "TASKRAIL_MAX_BATCH": "1"}  # fmt: skip
    conn = redis.Redis.from_url(url)
    workers = [start_live(procs, conn, f"survivor-{i}", "rec", env=wenv) for i in range(2)]
    client = Client(load_settings({**env, "REDIS_URL": url}))
    out = tmp_path / "done.txt"
    tags = [f"before-{i}" for i in range(40)]
    acknowledged = rt.to_file.enqueue_many([(str(out), tag, 0.2) for tag in tags], client=client)  # the call returned
    wait_for(lambda: out.exists() and len(out.read_text().split()) >= 8, 30, what="some jobs done")

    _stop(own_server)
    # Jobs running now finish without the server: their workers must hold on to the outcomes.
    wait_for(lambda: any("Redis unreachable" in procs.log(w) for w in workers), 30, what="a worker noticing")
    restarted = start_server(own_server.data_dir, own_server.port)
    try:
        more = [f"after-{i}" for i in range(20)]
        wait_for(lambda: _try_map(client, out, more), 30, what="enqueue after the restart")
        wait_for(lambda: set(tags + more) <= set(out.read_text().split()), 90, interval=0.2, what="every job done")
        assert all(w.poll() is None for w in workers), "a worker exited during the outage"
        conn = redis.Redis.from_url(url)
        wait_for(lambda: conn.llen("rq:queue:rec") == 0 and conn.zcard("rq:wip:rec") == 0, 30, what="settled")
        assert {r.state for r in acknowledged} == {"SUCCESS"}
        assert conn.zcard("rq:failed:rec") == 0
        print("duplicated runs across the restart:", len(out.read_text().split()) - len(tags) - len(more))
    finally:
        os.kill(restarted.pid, signal.SIGKILL)


def _try_map(client: Client, out: Path, tags: list[str]) -> bool:
    try:
        rt.to_file.enqueue_many([(str(out), tag, 0.05) for tag in tags], client=client)
    except redis.ConnectionError:
        return False
    return True
