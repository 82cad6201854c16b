"""taskrail inspect / control against real workers: answers within a second while a long job runs,
silent workers listed, runtime rate limits on every worker (gone after a restart, as in Celery),
revoke of many ids with and without --terminate, shutdown of one worker."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from config import ConfigError
from config.settings import Settings
from tasks import AsyncResult, pause, resume
from tasks.core.client import Client
from tests import tasks_sched
from tests.conftest import BIN, Processes, live_workers, wait_for
from tests.tasks_routes import double
from workers.inspect import inspect_workers, rate_limit, revoke, shutdown

SCHED = {"TASKRAIL_IMPORTS": "tests.tasks_sched,tests.tasks_routes"}


def taskrail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "taskrail"), *args], env={**env, **SCHED}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def start_workers(procs: Processes, conn: redis.Redis, *names: str) -> dict[str, subprocess.Popen[bytes]]:
    started = {name: procs.worker("default", name=name, env=SCHED) for name in names}
    wait_for(lambda: live_workers(conn) >= set(names), 20, what=f"workers {names}")
    return started


def test_workers_answer_within_a_second_while_running_a_long_job(
    settings: Settings, procs: Processes, conn: redis.Redis, env: dict[str, str]
) -> None:
    start_workers(procs, conn, "busy")
    warm = double.enqueue_many([(i,) for i in range(40)])  # very short jobs: the worker then claims in batches
    wait_for(lambda: all(r.ready() for r in warm), 30, what="warm-up jobs")
    pause("default")
    long = tasks_sched.mark.delay("long", 30)
    queued = tasks_sched.mark.enqueue_many([(f"after-{i}",) for i in range(3)])
    later = tasks_sched.mark.apply_async(("later",), countdown=600)
    resume("default")
    wait_for(lambda: conn.hget(f"rq:job:{long.id}", "status") == b"started", 10, what="the long job to start")

    active = inspect_workers(conn, "active", timeout_s=1.0)
    assert active.not_answering == [] and list(active.answers) == ["busy"]
    (running,) = active.answers["busy"]
    assert running["id"] == long.id and running["task"] == "tests.tasks_sched.mark" and running["args"] == ["long", 30]
    reserved = inspect_workers(conn, "reserved", "busy")
    assert [job["id"] for job in reserved.answers["busy"]] == [r.id for r in queued]  # claimed, waiting their turn
    scheduled = inspect_workers(conn, "scheduled").answers["busy"]
    assert [(job["id"], job["task"]) for job in scheduled] == [(later.id, "tests.tasks_sched.mark")]
    registered = {t["name"]: t["rate_limit"] for t in inspect_workers(conn, "registered").answers["busy"]}
    assert registered["tests.tasks_sched.limited"] == "5/1s" and registered["tests.tasks_sched.mark"] is None
    stats = inspect_workers(conn, "stats").answers["busy"]
    assert stats["queues"] == ["default"] and stats["busy_slots"] == 1 and stats["jobs_done"] >= 40
    assert inspect_workers(conn, "ping").answers == {"busy": "pong"}

    table = taskrail(env, "inspect", "active")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0] == "-> busy: 1 item"
    assert long.id in table.stdout and "tests.tasks_sched.mark" in table.stdout
    as_json = json.loads(taskrail(env, "inspect", "ping", "--json").stdout)
    assert as_json == {"request": "ping", "answers": {"busy": "pong"}, "errors": {}, "not_answering": []}


def test_a_silent_worker_is_listed_as_not_answering(
    settings: Settings, procs: Processes, conn: redis.Redis, env: dict[str, str]
) -> None:
    workers = start_workers(procs, conn, "awake", "frozen")
    frozen = workers["frozen"].pid
    os.kill(frozen, signal.SIGSTOP)  # alive in the worker set, but answers nothing
    try:
        wait_for(lambda: Path(f"/proc/{frozen}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T", 10,
                 what="the worker stopped")  # fmt: skip
        found = inspect_workers(conn, "ping", timeout_s=0.5)
        assert found.answers == {"awake": "pong"} and found.not_answering == ["frozen"]
        run = taskrail(env, "inspect", "ping", "--timeout", "0.5")
        assert run.returncode == 1 and "not answering within 0.5s: frozen" in run.stdout
    finally:
        os.kill(workers["frozen"].pid, signal.SIGCONT)


def test_bad_requests_are_refused_naming_the_fix(settings: Settings, procs: Processes, conn: redis.Redis,
                                                 env: dict[str, str]) -> None:  # fmt: skip
    start_workers(procs, conn, "w1")
    with pytest.raises(ConfigError, match="no live worker named 'nope'; live workers: w1"):
        inspect_workers(conn, "ping", "nope")
    with pytest.raises(ConfigError, match="rate limit 'fast' is not like '10/s'"):
        rate_limit(conn, "tests.tasks_sched.mark", "fast")
    with pytest.raises(ConfigError, match="--timeout must be a number of seconds above 0"):
        inspect_workers(conn, "ping", timeout_s=0)
    unknown = rate_limit(conn, "tests.nope", "1/s")
    assert unknown.errors == {"w1": "task 'tests.nope' is not registered in this worker; check the name "
                                    "(inspect registered)"}  # fmt: skip
    run = taskrail(env, "control", "rate_limit", "tests.tasks_sched.mark", "fast")
    assert run.returncode == 2 and "rate limit 'fast' is not like '10/s'" in run.stderr
    run = taskrail(env, "inspect", "pong")
    assert run.returncode == 2 and "invalid choice: 'pong'" in run.stderr


def _starts(conn: redis.Redis, prefix: str) -> list[float]:
    tags = [t.decode() for t in conn.lrange("order", 0, -1)]
    times = [float(t) for t in conn.lrange("order_times", 0, -1)]
    return sorted(at for tag, at in zip(tags, times, strict=True) if tag.startswith(prefix))


def test_a_runtime_rate_limit_reaches_every_worker_and_ends_with_a_restart(
    settings: Settings, procs: Processes, conn: redis.Redis, env: dict[str, str]
) -> None:
    workers = start_workers(procs, conn, "r1", "r2")
    run = taskrail(env, "control", "rate_limit", "tests.tasks_sched.mark", "2/s")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "-> r1: OK" in run.stdout and "-> r2: OK" in run.stdout
    results = tasks_sched.mark.enqueue_many([(f"rl-{i}",) for i in range(7)])
    wait_for(lambda: all(r.ready() for r in results), 30, what="rate-limited jobs")
    starts = _starts(conn, "rl-")
    assert all(later - first >= 0.95 for first, later in zip(starts, starts[2:], strict=False)), (
        starts
    )  # never 3 in a second
    registered = inspect_workers(conn, "registered").answers
    assert all({"name": "tests.tasks_sched.mark", "rate_limit": "2/1s"} in r for r in registered.values())

    workers["r1"].kill()  # as in Celery, the change lives in the worker's memory: a new process has the task's own
    workers["r1"].wait()
    wait_for(lambda: "r1" not in live_workers(conn), 20, what="r1 gone")
    start_workers(procs, conn, "r1")
    limits = {name: {t["name"]: t["rate_limit"] for t in tasks} for name, tasks in
              inspect_workers(conn, "registered").answers.items()}  # fmt: skip
    assert limits["r1"]["tests.tasks_sched.mark"] is None and limits["r2"]["tests.tasks_sched.mark"] == "2/1s"
    assert rate_limit(conn, "tests.tasks_sched.mark", "0").answers["r2"] == {"task": "tests.tasks_sched.mark",
                                                                             "rate_limit": None}  # fmt: skip


def test_a_rate_limit_set_while_a_worker_waits_holds_for_the_claim_it_sent_before(
    settings: Settings, procs: Processes, conn: redis.Redis
) -> None:
    """An idle worker's claim is sent with its wait, before the limit exists: the claim reads it when it runs."""
    start_workers(procs, conn, "rw")
    wait_for(lambda: any(c["cmd"] == "blpop" for c in conn.client_list()), 10, what="the worker's wait")
    assert rate_limit(conn, "tests.tasks_sched.mark", "1/s").answers["rw"]["rate_limit"] == "1/s"
    results = tasks_sched.mark.enqueue_many([(f"rw-{i}",) for i in range(3)])
    wait_for(lambda: all(r.ready() for r in results), 30, what="rate-limited jobs")
    starts = _starts(conn, "rw-")
    assert all(later - first >= 0.95 for first, later in itertools.pairwise(starts)), starts


def test_revoke_cancels_waiting_jobs_and_terminate_stops_running_ones(
    settings: Settings, procs: Processes, conn: redis.Redis, env: dict[str, str]
) -> None:
    start_workers(procs, conn, "rv")
    long = tasks_sched.mark.delay("long", 30)
    wait_for(lambda: conn.hget(f"rq:job:{long.id}", "status") == b"started", 10, what="the long job to start")
    waiting = tasks_sched.mark.enqueue_many([(f"w-{i}",) for i in range(3)])
    ids = [long.id, *(r.id for r in waiting)]
    outcomes = revoke(Client(settings), ids)
    assert outcomes[long.id].startswith("running (left to finish") and AsyncResult(long.id).state == "STARTED"
    assert [outcomes[r.id] for r in waiting] == ["canceled"] * 3
    run = taskrail(env, "control", "revoke", long.id, "--terminate", "--json")
    assert run.returncode == 0 and json.loads(run.stdout) == {long.id: "stopping"}, run.stdout + run.stderr
    wait_for(lambda: AsyncResult(long.id).state == "REVOKED", 5, what="the running job to stop")
    assert conn.lrange("order", 0, -1) == [b"long"]  # the canceled ones never ran


def test_shutdown_stops_the_named_worker_only(settings: Settings, procs: Processes, conn: redis.Redis) -> None:
    workers = start_workers(procs, conn, "stay", "leave")
    found = shutdown(conn, "leave")
    assert found.answers == {"leave": {"command": "shutdown"}}
    assert workers["leave"].wait(timeout=20) == 0
    assert workers["stay"].poll() is None and inspect_workers(conn, "ping").answers == {"stay": "pong"}
