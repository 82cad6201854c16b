"""Lifecycle events: the Python iterator and ``taskrail events`` see a job's life in order; streams stay bounded."""

from __future__ import annotations

import subprocess
import threading
from typing import IO

import pytest
import redis

from tasks import Client
from tasks.core.events import Event, follow_events, read_events
from tests import tasks_observe as ot
from tests.conftest import BIN, Processes, live_workers, wait_for

OBS = {"TASKRAIL_IMPORTS": "tests.tasks_observe"}


@pytest.fixture
def worker(settings, procs: Processes, conn: redis.Redis):
    proc = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    return proc


def kinds_of(events: list[Event], job_id: str) -> list[str]:
    return [e.kind for e in events if e.job_id == job_id]


def test_a_followed_job_shows_its_life_in_order(worker) -> None:
    seen: list[Event] = []
    events = follow_events(["obs"], idle_timeout_s=10, block_s=0.2)  # "now" is this call

    def follow() -> None:
        for event in events:
            seen.append(event)
            if sum(e.kind == "completed" for e in seen) == 2:
                return

    follower = threading.Thread(target=follow, daemon=True)
    retried = ot.fails_once.delay("attempts")
    follower.start()
    stepped = ot.steps.delay(3)
    assert retried.get(timeout=20) == 2 and stepped.get(timeout=20) == 3
    follower.join(timeout=15)
    assert kinds_of(seen, retried.id) == ["enqueued", "started", "retried", "started", "completed"]
    assert kinds_of(seen, stepped.id) == ["enqueued", "started", "progress", "progress", "progress", "completed"]
    retry = next(e for e in seen if e.kind == "retried")
    assert retry.error == "Flaky" and retry.task == ot.fails_once.name and retry.worker
    assert [e.percent for e in seen if e.kind == "progress"] == pytest.approx([100 / 3, 200 / 3, 100])
    done = next(e for e in seen if e.kind == "completed" and e.job_id == stepped.id)
    assert done.duration_ms is not None and done.duration_ms >= 0 and done.at > 0
    # The stored history says the same.
    assert kinds_of(read_events(["obs"]), retried.id) == kinds_of(seen, retried.id)
    assert [e.id for e in seen] == sorted((e.id for e in seen), key=lambda i: tuple(map(int, i.split("-"))))


def lines_of(stream: IO[str]) -> list[str]:
    """Lines read from ``stream`` by a background thread, as they come."""
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_cli_prints_history_and_follows_new_events(worker, env: dict[str, str]) -> None:
    first = ot.double.delay(1)
    assert first.get(timeout=15) == 2
    history = subprocess.run([str(BIN / "taskrail"), "events", "obs"], env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert history.returncode == 0, history.stderr
    lines = [line for line in history.stdout.splitlines() if first.id in line]
    assert [line.split()[2] for line in lines] == ["enqueued", "started", "completed"], history.stdout

    tail = subprocess.Popen([str(BIN / "taskrail"), "events", "--follow"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        out, err = lines_of(tail.stdout), lines_of(tail.stderr)
        wait_for(lambda: any("following events" in line for line in err), 30, what="the follower to start")
        second = ot.double.delay(2)
        assert second.get(timeout=15) == 4
        wait_for(lambda: any("completed" in line for line in out), 15, what="the completed event on stdout")
        assert [line.split()[2] for line in out if second.id in line] == ["enqueued", "started", "completed"], out
        assert not any(first.id in line for line in out), "--follow starts from now"
    finally:
        tail.kill()
        tail.wait(timeout=10)


def test_event_streams_are_bounded(settings, conn: redis.Redis) -> None:
    client = Client(settings.replace(events_maxlen=50))
    ot.double.enqueue_many([(i,) for i in range(1000)], client=client)
    assert conn.llen("rq:queue:obs") == 1000
    # MAXLEN ~ trims whole nodes (100 entries each), so the stream stays near the bound, never at 1000.
    assert conn.xlen("taskrail:events:obs") <= 200
