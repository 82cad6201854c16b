"""A producer host cut off from the server during ``apply_async`` and ``map`` (issue 18, scenario 3).

The caller gets a clear error or, with a ``retry_policy``, a retried success; no job is half written and none is
enqueued twice. Every job the server holds is compared with what the producer was told.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from tests.multihost.conftest import Cluster, Tally, record

pytestmark = pytest.mark.multihost  # make test leaves these out; make multihost runs them (as root)

CUT_AFTER_S, CUT_FOR_S, PRODUCE_S = 3.0, 8.0, 15.0  # the cut outlasts a 5 s socket timeout
CLEAR_ERRORS = ("ConnectionError", "TimeoutError", "ConnectionFailed")


def test_a_cut_producer_gets_an_error_or_a_retried_success_and_writes_nothing_twice(cluster: Cluster) -> None:
    cluster.set_rtt(["worker-1", "producer"], 1.0)
    cluster.wait_live([cluster.start_worker("worker-1")])
    producers = [cluster.produce(kind, 0, 0, PRODUCE_S) for kind in ("apply", "maps")]
    time.sleep(CUT_AFTER_S)
    cluster.net.cut("producer")
    time.sleep(CUT_FOR_S)
    cluster.net.restore("producer")
    restored_at = time.time()
    wait_for(lambda: all(p.poll() is not None for p, _ in producers), PRODUCE_S + 120, 0.2, what="the producers")
    assert all(p.returncode == 0 for p, _ in producers), cluster.log("producer")
    rows = [json.loads(line) for _, out in producers for line in out.read_text().splitlines()]
    told = [i for row in rows if row["ok"] for i in row["ids"]]
    failed = [row for row in rows if not row["ok"]]
    # During the cut: map (no retry policy) fails with a connection error; apply_async retries until it gets through.
    assert failed and all(row["kind"] == "map" for row in failed), "only map (no retry_policy) should fail"
    assert all(any(name in row["error"] for name in CLEAR_ERRORS) for row in failed), failed
    # The call under way when the link came back is an apply_async that kept retrying, and it succeeded.
    across = [r for r in rows if r["kind"] == "apply" and r["started"] < restored_at < r["started"] + r["duration"]]
    assert [r["ok"] for r in across] == [True], across
    recovery_s = round(min(r["started"] + r["duration"] for r in rows if r["ok"] and r["started"] > restored_at)
                       - restored_at, 2)  # fmt: skip
    stored = _stored_job_ids(cluster)
    cluster.wait_finished(len(stored), 120)
    unreported = stored - set(told)  # written, but the caller was told it failed (its reply was lost)
    assert set(told) <= stored, "the producer was told of jobs the server does not hold"
    tally = cluster.tally(sorted(stored))
    assert not tally.lost
    assert not tally.double, [(r, _results(cluster, r["ids"][0])) for r in rows if set(r["ids"]) & set(tally.double)]
    assert all(cluster.conn.hget(f"rq:job:{i}", "status") == b"finished" for i in stored), "a half-written job"
    record("3. producer cut for 8 s", Tally(len(stored), tally.lost, tally.double), recovery_s, None,
           calls=len(rows), errors=len(failed), unreported=len(unreported))  # fmt: skip


def _results(cluster: Cluster, job_id: str) -> list[dict[bytes, bytes]]:
    return [entry for _, entry in cluster.conn.xrange(f"rq:results:{job_id}")]


def _stored_job_ids(cluster: Cluster) -> set[str]:
    return {k.decode().removeprefix("rq:job:") for k in cluster.conn.scan_iter("rq:job:*", count=1000)
            if k.count(b":") == 2}  # fmt: skip
