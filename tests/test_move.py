"""``taskrail move``: waiting jobs go from one queue to another, run there, and keep their wait (runbooks)."""

from __future__ import annotations

import subprocess

import redis

from tests import tasks_observe as ot
from tests.conftest import BIN, ROOT, Processes, live_workers, wait_for
from tests.lua.helpers import run_order
from tests.test_metrics import OBS
from workers.census import oldest_wait_s
from workers.exitcodes import RET_CONFIG, RET_OK


def _move(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "taskrail"), "move", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)  # fmt: skip


def test_move_takes_waiting_jobs_to_another_queue_where_they_run(env, settings, procs: Processes,
                                                                 conn: redis.Redis) -> None:  # fmt: skip
    plain = [ot.double.delay(i) for i in range(3)]  # no worker on obs: they wait
    conn.hset(f"rq:job:{plain[0].id}", "enqueued_at", "2020-01-01T00:00:00.000000Z")
    urgent = ot.double.apply_async((10,), priority=0)
    assert run_order(conn, "obs") == [urgent.id, *(r.id for r in plain)]

    first = _move(env, "obs", "spare", "--limit", "1")
    assert first.returncode == RET_OK, first.stderr
    assert "moved 1 job from obs to spare; 3 still waiting in obs" in first.stdout
    assert run_order(conn, "spare") == [urgent.id]  # the head: the next to run

    rest = _move(env, "obs", "spare")
    assert rest.returncode == RET_OK and "moved 3 jobs" in rest.stdout, rest.stdout + rest.stderr
    assert run_order(conn, "obs") == []
    assert run_order(conn, "spare") == [urgent.id, *(r.id for r in plain)]
    assert {conn.hget(f"rq:job:{r.id}", "origin") for r in [*plain, urgent]} == {b"spare"}
    assert oldest_wait_s(conn, "spare") > 3600  # the wait goes on: not reset by the move

    procs.worker("spare", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="a worker on spare")
    assert [r.get(timeout=15) for r in plain] == [0, 2, 4] and urgent.get(timeout=15) == 20


def test_move_refuses_one_queue_twice_and_bad_names(env) -> None:
    same = _move(env, "obs", "obs")
    assert same.returncode == RET_CONFIG and "name two different queues" in same.stderr
    bad = _move(env, "obs", "no such queue")
    assert bad.returncode == RET_CONFIG and "queue" in bad.stderr, bad.stderr
    assert _move(env, "obs", "spare", "--limit", "0").returncode != RET_OK
