"""The chaos run's parts, without the run: the proxy against the test server, and the final-state checker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.embedded import EmbeddedServer
from scripts.chaos import ChaosOptions, ChaosResult, Findings, Proxy, check, format_table, write_docs, write_findings
from scripts.chaos.jobs import EXECUTIONS
from tasks.core import keys
from tasks.core.protocol import encode_return_value


@pytest.fixture
def proxy(redis_url: str, server: EmbeddedServer) -> Iterator[Proxy]:
    with Proxy(0, ("127.0.0.1", server.port)) as running:
        yield running


def _client(url: str) -> redis.Redis:
    """No retries: a lost reply must surface, not be hidden by running the command again."""
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=5)


def test_dropped_reply_raises_connection_error_and_the_command_applied_once(proxy: Proxy, conn: redis.Redis) -> None:
    client = _client(proxy.url)
    assert client.ping()
    proxy.drop_next()
    with pytest.raises(redis.ConnectionError):
        client.incr("counter")
    assert conn.get("counter") == b"1"  # the server ran it; only the reply was lost
    assert proxy.dropped == 1
    assert client.incr("counter") == 2  # a new connection through the proxy works again
    client.close()


def test_cut_all_closes_every_connection_and_idle_clients_reconnect(proxy: Proxy, conn: redis.Redis) -> None:
    clients = [_client(proxy.url) for _ in range(3)]
    for client in clients:
        client.ping()
    assert proxy.cut_all() == 3
    assert proxy.connections() == 0
    # redis-py notices a closed idle connection when it takes it from the pool, and opens a new one.
    for client in clients:
        assert client.set("k", "v")
    assert proxy.connections() == 3
    assert conn.get("k") == b"v"


def test_drop_fraction_one_drops_every_reply(proxy: Proxy, conn: redis.Redis) -> None:
    client = _client(proxy.url)
    proxy.drop_fraction(1.0)
    for _ in range(3):
        with pytest.raises(redis.ConnectionError):
            client.incr("n")
    proxy.drop_fraction(0)
    assert client.ping()
    assert proxy.dropped == 3  # each try lost its first reply (the connection's handshake) and was cut


def _finish(conn: redis.Redis, job_id: str, value: int, *, completions: int = 1, queue: str = "chaos") -> None:
    """Write what a finished job leaves, with ``completions`` result entries and `completed` events."""
    conn.hset(keys.JOB.format(job_id), mapping={"status": "finished"})
    for _ in range(completions):
        conn.xadd(keys.RESULTS.format(job_id), {"type": "1", "return_value": encode_return_value(value)})
        conn.xadd(keys.EVENTS.format(queue), {"event": "completed", "job": job_id})
    conn.hincrby(EXECUTIONS, job_id, 1)


def test_checker_finds_a_lost_job_and_a_double_completion(conn: redis.Redis) -> None:
    _finish(conn, "good", 10)
    _finish(conn, "twice", 20, completions=2)
    conn.hset(keys.JOB.format("stuck"), mapping={"status": "queued"})
    _finish(conn, "wrong", 99)
    conn.hincrby(EXECUTIONS, "good", 1)  # ran twice, completed once: allowed, counted
    findings = check(conn, {"good": 10, "twice": 20, "stuck": 30, "wrong": 40, "gone": 50}, "chaos")
    assert set(findings.lost) == {"stuck", "wrong", "gone"}
    assert findings.lost["wrong"] == "result 99, expected 40"
    assert set(findings.double_completed) == {"twice"}
    assert findings.executions_beyond_one == 1 and findings.jobs_run_again == 1
    assert not findings.ok


def test_checker_reports_claims_and_started_entries_left_behind(conn: redis.Redis) -> None:
    _finish(conn, "a", 1)
    conn.hset(keys.CLAIMS.format("w1"), "a", "chaos")
    conn.zadd(keys.STARTED.format("chaos"), {"a:w1": 1})
    findings = check(conn, {"a": 1}, "chaos")
    assert findings.ok
    assert findings.leftovers == ["rq:wip:chaos (1 entries)", "taskrail:claims:w1 (1 entries)"]


def test_write_docs_replaces_only_the_marked_section(tmp_path: Path) -> None:
    doc = tmp_path / "operations.md"
    doc.write_text("# Ops\n\n<!-- chaos -->\nold table\n<!-- /chaos -->\n\nafter\n")
    result = ChaosResult(ChaosOptions(jobs=2, command="taskrail chaos --quick"), Findings(jobs=2), {"plain": 2},
                         kills=4, duration_s=12.0, finished_at="2026-11-30 22:00 UTC")  # fmt: skip
    write_docs(result, doc)
    text = doc.read_text()
    assert "old table" not in text and text.endswith("<!-- /chaos -->\n\nafter\n")
    assert "`taskrail chaos --quick`, 2026-11-30 22:00 UTC" in text
    assert format_table(result) in text


def test_write_findings_lists_every_problem_job(tmp_path: Path) -> None:
    findings = Findings(jobs=3, lost={"a": "status started"}, double_completed={"b": "2 results, 2 completed events"})
    result = ChaosResult(ChaosOptions(jobs=3), findings, {"plain": 3}, dropped=7)
    write_findings(result, tmp_path / "out" / "findings.json")
    data = json.loads((tmp_path / "out" / "findings.json").read_text())
    assert data["findings"]["lost"] == {"a": "status started"}
    assert data["findings"]["double_completed"] == {"b": "2 results, 2 completed events"}
    assert data["faults"]["dropped_replies"] == 7
