"""A job given an ``eta`` runs at that time, not before; a worker past ``max_memory_mb`` recycles without losing work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from tests import tasks_core, tasks_sched
from tests.conftest import Processes, live_workers, wait_for
from workers.exitcodes import RET_RECYCLE


def test_an_eta_job_runs_at_its_time(settings, procs: Processes, conn: redis.Redis) -> None:
    procs.worker("default", env={"TASKRAIL_IMPORTS": "tests.tasks_sched"})
    wait_for(lambda: live_workers(conn), 15, what="worker")
    eta = datetime.now(UTC) + timedelta(seconds=2)
    result = tasks_sched.tick.apply_async(("eta",), eta=eta)
    assert conn.zscore("rq:scheduled:default", result.id) == eta.timestamp()  # RQ's scheduled registry
    ran_at = result.get(timeout=20)
    assert 0 <= ran_at - eta.timestamp() <= 1.5  # never early; promoted within the scheduler's tick
    assert conn.llen("ticks:eta") == 1


def test_a_worker_past_max_memory_recycles_and_loses_no_job(settings, procs: Processes, conn: redis.Redis) -> None:
    result = tasks_core.add.delay(2, 2)
    worker = procs.worker(  # any Python process is above 1 MB: it recycles at its first memory check
        "core", env={"TASKRAIL_IMPORTS": "tests.tasks_core", "TASKRAIL_MAX_MEMORY_MB": "1"}
    )
    assert worker.wait(timeout=30) == RET_RECYCLE, procs.log(worker)
    assert "passed max_memory_mb=1" in procs.log(worker)
    # Whatever it had claimed was finished or handed back, never lost: a fresh worker completes the rest.
    procs.worker("core", env={"TASKRAIL_IMPORTS": "tests.tasks_core"})
    assert result.get(timeout=20) == 4
    assert not any(conn.hlen(key) for key in conn.scan_iter("taskrail:claims:*"))  # no claim left behind
