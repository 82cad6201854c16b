"""Exactly-once completion records: a settle is fenced by the claim it settles.

A worker that looks dead (stopped, or holding the GIL past its heartbeat TTL) has its job recovered
and run elsewhere; when it comes back, its own settle must change nothing. Real ``rq worker``
processes against the real server; heartbeat TTL 3 s.
"""

from __future__ import annotations

import signal

import redis

from scripts.chaos import Proxy
from scripts.chaos.jobs import plain
from tests import tasks_recovery as rt
from tests.conftest import Processes, wait_for
from tests.test_recovery import FAST, completions, kill, start_live, starts


def _events(conn: redis.Redis, job_id: str) -> list[str]:
    return [f[b"event"].decode() for _, f in conn.xrange("taskrail:events:rec") if f.get(b"job") == job_id.encode()]


def _assert_recorded_once(conn: redis.Redis, job_id: str) -> None:
    """One result entry of type 1, one completed event, completed=1, nothing failed, status finished."""
    entries = [e for _, e in conn.xrange(f"rq:results:{job_id}")]
    assert [e[b"type"] for e in entries] == [b"1"], entries
    assert _events(conn, job_id).count("completed") == 1, _events(conn, job_id)
    task = conn.hget(f"rq:job:{job_id}", "tr_task").decode()
    assert conn.hget(f"taskrail:taskstats:{task}", "completed") == b"1"
    assert conn.hget(f"taskrail:taskstats:{task}", "failed") is None
    assert conn.zcard("rq:failed:rec") == 0 and conn.zcard("rq:wip:rec") == 0
    assert conn.hget(f"rq:job:{job_id}", "status") == b"finished"
    assert not list(conn.scan_iter("taskrail:claims:*"))


def test_a_stopped_worker_that_resumes_does_not_record_its_job_again(settings, procs: Processes, conn) -> None:
    slow = start_live(procs, conn, "slow", "rec", env=FAST)
    result = rt.long_first.delay(4.0, 0.2)
    wait_for(lambda: starts(conn, result.id), 15, what="the first start")
    slow.send_signal(signal.SIGSTOP)  # alive but silent: its heartbeat lapses
    start_live(procs, conn, "rescuer", "rec", env=FAST)
    wait_for(lambda: conn.hget(f"rq:job:{result.id}", "status") == b"finished", 30, what="the rescuer's run")
    slow.send_signal(signal.SIGCONT)
    wait_for(lambda: "settle_rejected" in _events(conn, result.id), 30, what="the late settle's rejection")
    assert completions(conn, result.id) == 2  # at-least-once execution: it did run twice
    _assert_recorded_once(conn, result.id)
    assert result.get(timeout=5) == "done"
    assert "no longer held their claims" in procs.log(slow)


def test_a_worker_holding_the_gil_past_its_ttl_does_not_record_its_job_again(settings, procs: Processes, conn) -> None:
    busy = start_live(procs, conn, "busy", "rec", env=FAST)
    result = rt.gil_first.delay(6.0, 0.1)
    wait_for(lambda: starts(conn, result.id), 15, what="the first start")
    start_live(procs, conn, "rescuer", "rec", env=FAST)
    wait_for(lambda: "settle_rejected" in _events(conn, result.id), 40, what="the GIL holder's late settle")
    wait_for(lambda: conn.hget(f"rq:job:{result.id}", "status") == b"finished", 30, what="the rescuer's run")
    assert len(starts(conn, result.id)) == 2 and completions(conn, result.id) == 2
    _assert_recorded_once(conn, result.id)
    assert busy.poll() is None  # it carries on as a worker


def test_a_worker_killed_on_its_first_job_has_it_run_again(settings, procs: Processes, conn) -> None:
    result = rt.long_first.delay(30.0, 0.1)  # waiting before the worker starts
    victim = procs.worker("rec", name="victim", env=FAST)
    wait_for(lambda: starts(conn, result.id), 30, interval=0.005, what="the first start")
    kill(victim)  # within moments of its first claim
    start_live(procs, conn, "rescuer", "rec", env=FAST)
    wait_for(lambda: completions(conn, result.id) == 1, 20, what="the job to run again")
    wait_for(lambda: conn.hget(f"rq:job:{result.id}", "status") == b"finished", 10, what="its settle")
    _assert_recorded_once(conn, result.id)


def test_replies_lost_between_worker_and_server_lose_nothing_and_count_nothing_twice(
    settings, procs: Processes, conn, server
) -> None:
    total = 300
    [plain.delay(n, 1, work_ms=20) for n in range(total)]  # about 6 s of work: replies are lost throughout
    with Proxy(0, ("127.0.0.1", server.port)) as proxy:
        env = {**FAST, "TASKRAIL_IMPORTS": "scripts.chaos.jobs", "REDIS_URL": proxy.url,
               "CHAOS_RECORD_URL": settings.redis_url, "TASKRAIL_MAX_STALLED": "100"}  # fmt: skip
        worker = start_live(procs, conn, "behind-proxy", "chaos", env=env)
        proxy.drop_fraction(0.05)  # about one reply in twenty is lost, on every connection of the worker
        wait_for(lambda: proxy.dropped >= 20 or worker.poll() is not None, 60, what="dropped replies")
        proxy.drop_fraction(0)
        assert worker.poll() is None, procs.log(worker)
        wait_for(lambda: conn.zcard("rq:finished:chaos") == total, 60, interval=0.2, what="every job to finish")
    ids = [i.decode() for i in conn.zrange("rq:finished:chaos", 0, -1)]
    for job_id in ids:
        assert [e[b"type"] for _, e in conn.xrange(f"rq:results:{job_id}")] == [b"1"], job_id
    assert conn.hget("taskrail:taskstats:scripts.chaos.jobs.plain", "completed") == str(total).encode()
    names = [f[b"event"] for _, f in conn.xrange("taskrail:events:chaos")]
    assert names.count(b"completed") == total
    assert conn.zcard("rq:failed:chaos") == 0 and conn.llen("rq:queue:chaos") == 0
    wait_for(lambda: conn.zcard("rq:wip:chaos") == 0, 15, what="the started registry to empty")


def test_a_callback_whose_inputs_cannot_be_read_for_a_lost_connection_runs_again_later() -> None:
    from tasks.core.protocol import encode_job
    from workers.runner import ClaimedJob, run_job

    spec = encode_job(plain.name, (1, 2), {}, queue="chaos", max_payload_bytes=10_000, result_ttl=500, failure_ttl=900)
    data = str(spec.fields["data"]).encode()
    job = ClaimedJob("j1", "chaos", data, 1, 0, -1, 500, 900, 0, flow=b'{"mode": "one"}')

    def resolve(*_: object) -> object:
        raise redis.ConnectionError("Connection refused")  # the server restarting while a chord's callback starts

    outcome = run_job(job, resolve=resolve)
    assert outcome.kind == "requeue" and "Connection refused" in outcome.exc_message
