"""Poison jobs (issue 13) through a real worker: whatever a job hash holds, that one job fails with a reason
and the worker carries on with the next job."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import signal
import subprocess
import threading
import zlib
from typing import Any

import pytest
import redis

from tasks.core.protocol import encode_job
from tasks.emails import send_email
from tests.conftest import BIN, Processes, live_workers, wait_for
from workers import Worker
from workers.runner import ClaimedJob

QUEUE = "email"
WORKER = "w-poison"


def deep_data(levels: int) -> str:
    """send_email's call with ``html`` a list nested ``levels`` deep (enqueue refuses past 100)."""
    return '["tasks.emails.send_email",null,["a@example.com","s"],{"html":' + "[" * levels + "]" * levels + "}]"


@functools.cache
def zlib_bomb() -> bytes:
    """About 400 KB of zlib that inflates to 400 MB of zeros."""
    packer, chunk = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(400)) + packer.flush()


def write_job(conn: redis.Redis, job_id: str | bytes, **fields: Any) -> None:
    """A send_email job hash written by hand and pushed to its queue; a field set to None is left out."""
    spec = encode_job("tasks.emails.send_email", ["a@example.com", "s"], {}, queue=QUEUE,
                      max_payload_bytes=1 << 20, result_ttl=500, failure_ttl=900)  # fmt: skip
    mapping = {k: v for k, v in {**spec.fields, **fields}.items() if v is not None}
    key = b"rq:job:" + job_id if isinstance(job_id, bytes) else f"rq:job:{job_id}"
    conn.hset(key, mapping=mapping)
    conn.rpush(f"rq:queue:{QUEUE}", job_id)


def failed_events(conn: redis.Redis) -> dict[bytes, dict[bytes, bytes]]:
    return {f[b"job"]: f for _, f in conn.xrange(f"taskrail:events:{QUEUE}") if f[b"event"] == b"failed"}


@pytest.fixture
def worker(settings: object, procs: Processes, conn: redis.Redis) -> subprocess.Popen[bytes]:
    proc = procs.worker(QUEUE, name=WORKER)
    wait_for(lambda: WORKER in live_workers(conn), 15, what="worker heartbeat")
    return proc


def assert_carried_on(conn: redis.Redis, proc: subprocess.Popen[bytes], procs: Processes) -> None:
    """The valid job queued behind the poison completes, in the same worker process, holding no claims."""
    behind = send_email.delay("b@example.com", "behind the poison", text="ok")
    assert behind.get(timeout=20)["to"] == "b@example.com", procs.log(proc)
    assert proc.poll() is None, procs.log(proc)
    wait_for(lambda: conn.hlen(f"taskrail:claims:{WORKER}") == 0, 5, what="no claims left")
    assert "Traceback" not in procs.log(proc)


POISON = {
    "deep-json": ({"data": deep_data(987)}, "nested more than"),
    "deep-zlib": ({"data": zlib.compress(deep_data(987).encode())}, "nested more than"),
    "zlib-bomb": ({"data": zlib_bomb()}, "inflates to more than"),
    "no-data": ({"data": None}, "job has no data"),
    "conc-abc": ({"tr_conc": "abc"}, "tr_conc"),
    "rate-0-per-1": ({"tr_rate": "0/1"}, "tr_rate"),
    "rate-5-per-e": ({"tr_rate": "5/e"}, "tr_rate"),
    "attempts-inf": ({"tr_attempts": "inf"}, "tr_attempts"),
    "timeout-huge": ({"timeout": "99999999999999999999"}, "timeout"),
    "flow-not-json": ({"tr_flow": "{nope"}, "tr_flow"),
}


@pytest.mark.parametrize("case", list(POISON))
def test_poison_job_fails_with_its_reason_and_the_next_job_completes(case, worker, conn, procs) -> None:
    fields, reason = POISON[case]
    write_job(conn, "poison", **fields)
    assert_carried_on(conn, worker, procs)
    job = conn.hgetall("rq:job:poison")
    assert job[b"status"] == b"failed" and reason in job[b"tr_exc_message"].decode(), job.get(b"tr_exc_message")
    assert job[b"tr_exc_type"] == b"InvalidJob"
    assert conn.zscore(f"rq:failed:{QUEUE}", "poison") is not None
    assert failed_events(conn)[b"poison"][b"error"] == b"InvalidJob"
    [(_, entry)] = conn.xrange("rq:results:poison")
    assert entry[b"type"] == b"2" and reason.encode() in zlib.decompress(base64.b64decode(entry[b"exc_string"]))


def test_a_50mb_job_fails_without_the_worker_fetching_it(worker, conn, procs) -> None:
    body = "a" * (50 << 20)
    write_job(conn, "huge", data=json.dumps(["tasks.emails.send_email", None, [body, "s"], {}]))
    del body
    assert_carried_on(conn, worker, procs)
    assert conn.hget("rq:job:huge", "status") == b"failed"
    assert b"over the 2097152-byte limit" in conn.hget("rq:job:huge", "tr_exc_message")
    peak_kb = next(int(line.split()[1]) for line in open(f"/proc/{worker.pid}/status") if line.startswith("VmHWM"))
    assert peak_kb < 100_000, f"worker peak RSS {peak_kb} KB"


def test_a_zlib_bomb_leaves_the_worker_memory_modest(worker, conn, procs) -> None:
    write_job(conn, "bomb", data=zlib_bomb())
    assert_carried_on(conn, worker, procs)
    assert conn.hget("rq:job:bomb", "status") == b"failed"
    peak_kb = next(int(line.split()[1]) for line in open(f"/proc/{worker.pid}/status") if line.startswith("VmHWM"))
    assert peak_kb < 100_000, f"worker peak RSS {peak_kb} KB"


def test_a_job_id_that_is_not_utf8_is_failed_by_the_claim_and_left_out_of_the_registries(worker, conn, procs) -> None:
    write_job(conn, b"bad\xff\xfeid")
    assert_carried_on(conn, worker, procs)
    job = conn.hgetall(b"rq:job:bad\xff\xfeid")
    assert job[b"status"] == b"failed" and b"not valid UTF-8" in job[b"tr_exc_message"]
    assert 0 < conn.ttl(b"rq:job:bad\xff\xfeid") <= 900
    assert conn.zcard(f"rq:failed:{QUEUE}") == 0  # RQ's and taskrail's tools decode registry members as text
    assert b"bad\\xff\\xfeid" in failed_events(conn)


def test_a_queued_id_without_a_job_hash_is_dropped_with_an_event(worker, conn, procs) -> None:
    conn.rpush(f"rq:queue:{QUEUE}", "ghost")
    assert_carried_on(conn, worker, procs)
    dropped = [f for _, f in conn.xrange(f"taskrail:events:{QUEUE}") if f[b"event"] == b"dropped"]
    assert [f[b"job"] for f in dropped] == [b"ghost"] and not conn.exists("rq:job:ghost")


def test_a_too_deep_result_or_an_unprintable_error_fails_the_job_and_the_worker_carries_on(
    settings, procs, conn
) -> None:
    proc = procs.worker("core", name=WORKER, env={"TASKRAIL_IMPORTS": "tests.tasks_core,tasks.emails"})
    wait_for(lambda: WORKER in live_workers(conn), 15, what="worker heartbeat")
    from tests import tasks_core

    result = tasks_core.nest.delay(5000)
    wait_for(lambda: conn.hget(f"rq:job:{result.id}", "status") == b"failed", 15, what="the deep result to fail")
    unprintable = tasks_core.raise_unprintable.delay()
    assert tasks_core.add.delay(1, 2).get(timeout=15) == 3
    assert conn.hget(f"rq:job:{unprintable.id}", "status") == b"failed"
    assert proc.poll() is None, procs.log(proc)


PROFILE = """
queues: [email]
profiles:
  t:
    mode: strict
    defaults: {shutdown_timeout_s: 2, max_restarts: 1, max_seconds: 60}
    queues:
      email: {workers: 2}
"""


def test_seven_poison_jobs_never_make_the_supervisor_restart_a_worker(settings, procs, conn, tmp_path) -> None:
    path = tmp_path / "scaling.yaml"
    path.write_text(PROFILE)
    args = [str(BIN / "taskrail"), "supervise", "--file", str(path), "--profile", "t", "--node", "n1"]
    supervisor = procs.start(args, name="supervise")
    workers = lambda: {n: conn.hget(f"rq:worker:{n}", "pid") for n in live_workers(conn)}  # noqa: E731
    wait_for(lambda: len(workers()) == 2, 30, what="2 workers")
    before = workers()
    poison = {
        "p-deep": {"data": deep_data(987)}, "p-bomb": {"data": zlib_bomb()}, "p-nodata": {"data": None},
        "p-conc": {"tr_conc": "abc"}, "p-rate0": {"tr_rate": "0/1"}, "p-rate-e": {"tr_rate": "5/e"},
    }  # fmt: skip
    valid = []
    for job_id, fields in poison.items():
        write_job(conn, job_id, **fields)
        valid.append(send_email.delay(f"{job_id}@example.com", "behind", text="ok"))
    write_job(conn, b"p-\xff")
    valid.append(send_email.delay("last@example.com", "behind", text="ok"))
    assert [r.get(timeout=30)["to"] for r in valid] == [*(f"{j}@example.com" for j in poison), "last@example.com"]
    # The other worker may finish a valid job before the poison job's outcome is settled: poll for it.
    statuses = lambda: {conn.hget(f"rq:job:{j}", "status") for j in poison}  # noqa: E731
    wait_for(lambda: statuses() == {b"failed"}, 10, what="every poison job failed")
    assert conn.hget(b"rq:job:p-\xff", "status") == b"failed"
    assert workers() == before and supervisor.poll() is None
    assert "crashed" not in procs.log(supervisor) and "giving up" not in procs.log(supervisor)


@pytest.mark.parametrize(
    "mode", [{"TASKRAIL_ISOLATION": "fork"}, {"TASKRAIL_CONCURRENCY": "4"}], ids=["fork", "threads"]
)
def test_poison_jobs_fail_in_forked_and_threaded_workers_too(mode, settings, procs, conn) -> None:
    proc = procs.worker(QUEUE, name=WORKER, env=mode)
    wait_for(lambda: WORKER in live_workers(conn), 15, what="worker heartbeat")
    poison = {"p-deep": {"data": deep_data(987)}, "p-conc": {"tr_conc": "abc"}, "p-time": {"timeout": "9" * 10}}
    for job_id, fields in poison.items():
        write_job(conn, job_id, **fields)
    assert_carried_on(conn, proc, procs)
    statuses = lambda: {conn.hget(f"rq:job:{j}", "status") for j in poison}  # noqa: E731
    wait_for(lambda: statuses() == {b"failed"}, 10, what="every poison job failed")


def test_a_per_job_step_that_breaks_outside_the_task_fails_only_that_job(settings, conn) -> None:
    worker = Worker([QUEUE], connection=conn, settings=settings)
    worker.max_jobs = None
    slot = worker.slots[0]
    slot.thread_ident = threading.get_ident()
    previous = signal.getsignal(signal.SIGALRM)
    worker.interrupter.install(slot)
    job = ClaimedJob("j1", QUEUE, deep_data(1).encode(), 1, 0, 10**12, 500, 900, 0)  # a time limit setitimer refuses
    loop = asyncio.new_event_loop()
    try:
        outcome = worker._run(slot, job, loop)
    finally:
        loop.close()
        signal.signal(signal.SIGALRM, previous)
    assert outcome.kind == "fail" and outcome.exc_type == "OverflowError"
    assert outcome.exc_message.startswith("the worker could not run this job: ")
    assert not slot.active and slot.job_id is None
