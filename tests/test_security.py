"""A worker runs only registered tasks, and jobs are JSON: hand-written jobs cannot run other code."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import redis

from tasks import AsyncResult, TaskFailed
from tasks.core.protocol import encode_job
from tests import tasks_core
from tests.conftest import Processes, live_workers, wait_for


def write_raw_job(conn: redis.Redis, job_id: str, data: bytes | str, queue: str = "core") -> None:
    """Put a job on the queue the way an attacker with Redis access (or a buggy producer) might."""
    spec = encode_job("placeholder", [], {}, queue=queue, max_payload_bytes=1 << 20, job_id=job_id,
                      result_ttl=60, failure_ttl=600)  # fmt: skip
    fields = {**spec.fields, "data": data, "tr_task": "unknown"}
    conn.hset(f"rq:job:{job_id}", mapping=fields)
    conn.rpush(f"rq:queue:{queue}", job_id)


@pytest.mark.parametrize(
    ("func", "args"),
    [("os.system", ["touch {canary}"]), ("builtins.eval", ["open({canary!r}, 'w').write('x')"]),
     ("subprocess.call", [["touch", "{canary}"]])],
)  # fmt: skip
def test_unregistered_callable_is_not_run(settings, procs: Processes, conn: redis.Redis, tmp_path: Path,
                                          func: str, args: list) -> None:  # fmt: skip
    canary = tmp_path / "canary"
    rendered = json.loads(json.dumps(args).replace("{canary}", str(canary)).replace("{canary!r}", repr(str(canary))))
    write_raw_job(conn, "evil", json.dumps([func, None, rendered, {}]))
    procs.worker("core", env={"TASKRAIL_IMPORTS": "tests.tasks_core"})
    with pytest.raises(TaskFailed) as info:
        AsyncResult("evil").get(timeout=15)
    assert info.value.exc_type == "TaskNotRegistered"
    assert f"{func!r} is not registered" in info.value.message
    assert not canary.exists()


def test_pickled_job_data_is_refused(settings, procs: Processes, conn: redis.Redis, tmp_path: Path) -> None:
    canary = tmp_path / "pickle-canary"

    class Evil:
        def __reduce__(self):  # runs os.system on unpickling
            import os

            return (os.system, (f"touch {canary}",))

    write_raw_job(conn, "pickled", pickle.dumps(("os.system", None, [Evil()], {})))
    procs.worker("core", env={"TASKRAIL_IMPORTS": "tests.tasks_core"})
    with pytest.raises(TaskFailed) as info:
        AsyncResult("pickled").get(timeout=15)
    # Refused as data that is not taskrail's JSON, never unpickled: not merely failing somewhere later.
    assert info.value.exc_type == "InvalidJob"
    assert "not taskrail's JSON format" in info.value.message
    assert not canary.exists()


def test_worker_survives_bad_jobs_and_goes_on(settings, procs: Processes, conn: redis.Redis) -> None:
    write_raw_job(conn, "garbage", b"\x00\x01 not json")
    procs.worker("core", env={"TASKRAIL_IMPORTS": "tests.tasks_core"})
    wait_for(lambda: live_workers(conn), 15, what="worker")
    assert tasks_core.add.delay(20, 22).get(timeout=15) == 42
    assert AsyncResult("garbage").state == "FAILURE"
