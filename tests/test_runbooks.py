"""Runbook rehearsals (docs/operations.md, "Runbooks"), with real workers against a real server.

"Total Redis loss" is rehearsed as an empty server at the same address (FLUSHALL): what the runbook
says is lost is gone, the running workers go on serving new jobs by themselves, and only a restart
lists them in RQ's registry (`rq info`) again.
"""

from __future__ import annotations

import signal

import redis
from rq import Worker as RQWorker

from tests import tasks_observe as ot
from tests.conftest import Processes, live_workers, wait_for
from tests.test_metrics import OBS


def test_total_redis_loss_workers_serve_new_jobs_and_a_restart_re_registers_them(settings, procs: Processes,
                                                                                 conn: redis.Redis) -> None:  # fmt: skip
    worker = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="a worker")
    assert ot.double.delay(1).get(timeout=15) == 2
    delayed = ot.double.apply_async((5,), countdown=3600)
    assert conn.zcard("rq:scheduled:obs") == 1 and RQWorker.all(connection=conn)

    conn.flushall()  # the server comes back empty: no AOF, no RDB
    assert not conn.exists(f"rq:job:{delayed.id}")  # delayed jobs are among what is lost: re-drive them
    # The running worker needs nothing: its heartbeat, the leader lease and new jobs come back by themselves.
    wait_for(lambda: live_workers(conn) and conn.exists("taskrail:leader"), 15, what="heartbeat and leader again")
    assert ot.double.delay(2).get(timeout=15) == 4
    assert ot.double.apply_async((3,), countdown=0.2).get(timeout=15) == 6  # the scheduler runs again
    assert not RQWorker.all(connection=conn)  # but `rq info` no longer lists it: step 2, restart the workers

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, procs.log(worker)
    procs.worker("obs", env=OBS)
    wait_for(lambda: RQWorker.all(connection=conn), 15, what="the restarted worker in RQ's registry")
    assert ot.double.delay(4).get(timeout=15) == 8
