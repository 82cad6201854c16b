"""Sentry: a local HTTP receiver stands in for Sentry; a failing task reaches it, arguments scrubbed by default."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from tasks import TaskFailed
from tests import tasks_observe as ot
from tests.conftest import Processes, live_workers, wait_for
from workers.sentry import SCRUBBED, before_send_for

OBS = {"TASKRAIL_IMPORTS": "tests.tasks_observe"}
CARD, KEY = "4111-1111-1111-1111", "sk-live-0123456789"


class Receiver(ThreadingHTTPServer):
    """Collects the events of the envelopes POSTed to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # only sent when the SDK finds brotli installed

            body = brotli.decompress(body)
        self.server.raw.append(body)
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.server.events.append(json.loads(payload))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def failing_task_event(procs: Processes, conn: redis.Redis, receiver: Receiver, env: dict[str, str]):
    procs.worker("obs", env={**OBS, "SENTRY_DSN": receiver.dsn, **env})
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    result = ot.charge.delay(CARD, 30, api_key=KEY)
    with pytest.raises(TaskFailed):
        result.get(timeout=15)
    wait_for(lambda: receiver.events, 20, what="an event at the Sentry stand-in")
    [event] = receiver.events
    return result, event


def test_a_failing_task_reaches_sentry_with_its_arguments_scrubbed(settings, procs: Processes, conn: redis.Redis,
                                                                   receiver: Receiver) -> None:  # fmt: skip
    result, event = failing_task_event(procs, conn, receiver, {})
    [exception] = event["exception"]["values"]
    assert exception["type"] == "ValueError" and exception["value"] == "card declined for amount 30"
    assert exception["stacktrace"]["frames"][-1]["function"] == "charge"
    tags = event["tags"]
    assert tags["task"] == ot.charge.name and tags["queue"] == "obs"
    assert tags["attempt"] == "1" and tags["job_id"] == result.id
    job = event["contexts"]["taskrail_job"]
    assert job["args"] == SCRUBBED and job["kwargs"] == SCRUBBED
    everything = b"".join(receiver.raw)
    assert CARD.encode() not in everything and KEY.encode() not in everything


def test_with_send_args_on_the_arguments_are_sent(settings, procs: Processes, conn: redis.Redis,
                                                  receiver: Receiver) -> None:  # fmt: skip
    _result, event = failing_task_event(procs, conn, receiver, {"TASKRAIL_SENTRY_SEND_ARGS": "1"})
    job = event["contexts"]["taskrail_job"]
    assert job["args"] == [CARD, 30] and job["kwargs"] == {"api_key": KEY}


def test_before_send_scrubs_what_the_rq_integration_and_local_variables_carry() -> None:
    event = {
        "extra": {"rq-job": {"args": [CARD], "kwargs": {"k": KEY}, "description": f"charge({CARD!r})", "job_id": "j"}},
        "exception": {"values": [{"stacktrace": {"frames": [{"function": "charge", "vars": {"card": CARD}}]}}]},
        "contexts": {"taskrail_job": {"args": [CARD], "kwargs": {}, "task": "t"}},
    }
    scrubbed = before_send_for(False)(json.loads(json.dumps(event)), {})
    assert scrubbed is not None and CARD not in json.dumps(scrubbed) and KEY not in json.dumps(scrubbed)
    assert scrubbed["extra"]["rq-job"]["job_id"] == "j" and scrubbed["contexts"]["taskrail_job"]["task"] == "t"
    assert before_send_for(True)(json.loads(json.dumps(event)), {}) == event


STALLED_REPORTER = """
import sys
import redis
import sentry_sdk
from config import load_settings
from workers.sentry import capture_stalled, init_sentry

settings = load_settings()
assert init_sentry(settings)
capture_stalled(redis.Redis.from_url(settings.redis_url), sys.argv[1:], settings.max_stalled)
sentry_sdk.flush(10)
"""


def test_stalled_jobs_are_reported_scrubbed(settings, env: dict[str, str], conn: redis.Redis,
                                            receiver: Receiver) -> None:  # fmt: skip
    requeued, failed = ot.charge.delay(CARD, 1, api_key=KEY), ot.charge.delay(CARD, 2)
    conn.hset(f"rq:job:{requeued.id}", mapping={"tr_stalls": 1, "tr_attempts": 1})
    conn.hset(f"rq:job:{failed.id}", mapping={"tr_stalls": 2, "tr_attempts": 2})
    subprocess.run([sys.executable, "-c", STALLED_REPORTER, requeued.id, failed.id],
                   env={**env, "SENTRY_DSN": receiver.dsn}, check=True, timeout=60)  # fmt: skip
    wait_for(lambda: len(receiver.events) == 2, 20, what="two stalled events")
    by_job = {e["tags"]["job_id"]: e for e in receiver.events}
    assert by_job[requeued.id]["level"] == "warning" and by_job[failed.id]["level"] == "error"
    message = json.dumps(by_job[failed.id])
    assert "stalled 2 times" in message and "failed (max_stalled passed)" in message
    assert by_job[failed.id]["tags"]["task"] == ot.charge.name and by_job[failed.id]["tags"]["stalled"] == "2"
    everything = b"".join(receiver.raw)
    assert CARD.encode() not in everything and KEY.encode() not in everything
