"""Scheduled work with several supervisors: delayed jobs and periodic schedules fire once, on time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from config.errors import ConfigError
from tests import tasks_sched
from tests.conftest import BIN, Processes, live_workers, wait_for
from workers.periodic import PeriodicEntry, load_periodic

PROFILE = """
queues: [default]
profiles:
  t:
    mode: strict
    defaults: {shutdown_timeout_s: 2, max_restarts: 5, max_seconds: 30}
    queues:
      default: {workers: 1}
"""

SCHEDULES = """
periodic:
  every-second:
    task: tests.tasks_sched.tick
    every_s: 1
    args: [every]
  even-seconds:
    task: tests.tasks_sched.tick
    cron: "* * * * * */2"
    kwargs: {name: cron}
"""


@pytest.fixture
def two_supervisors(settings, procs: Processes, tmp_path: Path, conn: redis.Redis) -> Iterator[None]:
    """Two ``taskrail supervise`` processes, as on two machines, each running one worker."""
    (tmp_path / "scaling.yaml").write_text(PROFILE)
    (tmp_path / "periodic.yaml").write_text(SCHEDULES)
    env = {"TASKRAIL_IMPORTS": "tests.tasks_sched", "TASKRAIL_PERIODIC_FILE": str(tmp_path / "periodic.yaml")}
    command = [str(BIN / "taskrail"), "supervise", "--file", str(tmp_path / "scaling.yaml"), "--profile", "t"]
    started = [
        procs.start([*command, "--node", node], env=env, name=f"supervise-{node}")
        for node in ("machine-a", "machine-b")
    ]
    wait_for(lambda: len(live_workers(conn)) == 2, 30, what="two workers under two supervisors")
    yield
    for proc in started:  # gracefully, so they take their workers down with them
        proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _started(conn: redis.Redis, job_id: str) -> float:
    raw = conn.hget(f"rq:job:{job_id}", "started_at")
    assert raw, job_id
    return datetime.strptime(raw.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _periodic_jobs(conn: redis.Redis) -> list[tuple[str, float, str]]:
    """(schedule, occurrence, job id) of every job a schedule enqueued."""
    found = []
    for key in conn.scan_iter("rq:job:*"):
        marker = conn.hget(key, "tr_periodic")
        if marker:
            name, _, at = marker.decode().rpartition("@")
            found.append((name, float(at), key.decode().split(":", 2)[2]))
    return found


def test_delayed_and_periodic_jobs_fire_once_on_time_with_two_supervisors(two_supervisors, conn: redis.Redis) -> None:
    before = time.time()
    delayed = tasks_sched.tick.enqueue_many([(f"delayed-{i}",) for i in range(20)], countdown=1.5)
    wait_for(lambda: all(r.ready() for r in delayed), 20, what="20 delayed jobs")
    for result in delayed:
        assert result.successful() and result.attempts == 1
        late = _started(conn, result.id) - (before + 1.5)  # it was due 1.5 s after enqueue, at or after before + 1.5
        assert -0.001 <= late <= 1.0  # never early (1 ms: started_at's rounding), promoted within a second
    assert all(conn.llen(f"ticks:delayed-{i}") == 1 for i in range(20))

    wait_for(lambda: conn.llen("ticks:every") >= 3, 15, what="three periodic runs")
    # Kill the leader: another worker takes over the schedules when its lease runs out.
    leader = conn.get("taskrail:leader")
    assert leader is not None
    pid = int(conn.hget(f"rq:worker:{leader.decode()}", "pid") or 0)
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: (conn.get("taskrail:leader") or leader) != leader, 20, what="a new leader")
    took_over = time.time()
    runs_at_takeover = conn.llen("ticks:every")
    wait_for(lambda: conn.llen("ticks:every") >= runs_at_takeover + 3, 15, what="runs under the new leader")
    wait_for(lambda: conn.llen("ticks:cron") >= 2, 15, what="two cron runs")

    jobs = _periodic_jobs(conn)
    occurrences = Counter((name, at) for name, at, _ in jobs)
    assert max(occurrences.values()) == 1, occurrences  # no occurrence enqueued twice
    every = sorted(at for name, at, _ in jobs if name == "every-second")
    assert all(at == int(at) for at in every) and len(every) >= 6
    assert all(int(at) % 2 == 0 for name, at, _ in jobs if name == "even-seconds")
    for name, at, job_id in jobs:  # on time, but for the ones the dead leader left (coalesced, late)
        in_gap = killed_at - 1 <= at <= took_over + 0.2
        if not in_gap and conn.hget(f"rq:job:{job_id}", "status") in (b"started", b"finished"):
            assert -0.001 <= _started(conn, job_id) - at <= 1.0, (name, at)  # never before its occurrence
    ran = Counter(float(t) for t in conn.lrange("ticks:every", 0, -1))
    assert len(ran) == conn.llen("ticks:every")  # and every run was a different job


def test_schedules_are_validated_strictly(tmp_path: Path) -> None:
    path = tmp_path / "periodic.yaml"
    cases = {
        "periodic: {a: {task: t, cron: '0 2 * * *', every_s: 5}}": "exactly one of 'cron'",
        "periodic: {a: {task: t, cron: '61 * * * *'}}": "is not 5 fields",
        "periodic: {a: {task: t, every_s: 0.1}}": "every_s must be a number of seconds",
        "periodic: {a: {task: t, every_s: .nan}}": "every_s must be a number of seconds",
        "periodic: {a: {task: t, every_s: .inf}}": "every_s must be a number of seconds",
        "periodic: {a: {task: t, every_s: 5, retries: 3}}": "unknown key 'retries'",
        "periodic: {a: {cron: '* * * * *'}}": "'task' must name a registered task",
        "periodic: {a: {task: t, cron: '0 2 * * *', timezone: Mars/Olympus}}": "not an IANA name",
        "periodic: {a: {task: t, every_s: 5, args: {x: 1}}}": "'args' must be a list",
        "schedules: {}": "one top-level key 'periodic'",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_periodic(path)
    assert load_periodic(tmp_path / "missing.yaml") == []


def test_occurrences_follow_cron_in_its_timezone() -> None:
    nightly = PeriodicEntry("nightly", "t", cron="0 2 * * *", timezone="Europe/Paris")
    at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(nightly.following(at), UTC) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert datetime.fromtimestamp(nightly.latest(at), UTC) == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    every = PeriodicEntry("every", "t", every_s=30)
    assert every.latest(95.0) == 90.0 and every.following(90.0) == 120.0


BAD_ENTRIES = """
periodic:
  good:
    task: tests.tasks_sched.tick
    every_s: 1
    args: [good]
  wrong-kwargs:
    task: tests.tasks_sched.tick
    every_s: 1
    kwargs: {kind: daily}
  no-such-task:
    task: tests.monitoring.ping
    every_s: 1
"""


def test_the_leader_skips_and_reports_bad_entries_and_fires_the_rest(
    settings, procs: Processes, tmp_path: Path, conn: redis.Redis
) -> None:
    path = tmp_path / "periodic.yaml"
    path.write_text(BAD_ENTRIES)
    proc = procs.worker("default", env={"TASKRAIL_IMPORTS": "tests.tasks_sched", "TASKRAIL_PERIODIC_FILE": str(path)})
    wait_for(lambda: conn.llen("ticks:good") >= 2, 30, what="the good schedule to fire twice")
    assert proc.poll() is None
    log = procs.log(proc)
    assert f"skipping a periodic schedule: {path}: periodic 'wrong-kwargs': tests.tasks_sched.tick(" in log
    assert "fix its args/kwargs" in log
    assert f"{path}: periodic 'no-such-task': task 'tests.monitoring.ping' is not registered here" in log
    assert "add the module that defines it to TASKRAIL_IMPORTS" in log
    assert {name for name, _, _ in _periodic_jobs(conn)} == {"good"}


def test_periodic_check_names_file_entry_and_fix(settings, env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "periodic.yaml"
    path.write_text(BAD_ENTRIES)
    check = [str(BIN / "taskrail"), "periodic", "check", str(path)]
    run = subprocess.run(check, env={**env, "TASKRAIL_IMPORTS": "tests.tasks_sched"}, capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{path}: periodic 'wrong-kwargs': tests.tasks_sched.tick(")
    assert lines[1].startswith(f"{path}: periodic 'no-such-task': task 'tests.monitoring.ping' is not registered")
    assert lines[2] == f"{path}: 2 bad schedule(s), skipped by the workers until fixed; 1 OK"
    path.write_text(SCHEDULES)
    run = subprocess.run(check, env={**env, "TASKRAIL_IMPORTS": "tests.tasks_sched"}, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, f"{path}: OK: 2 schedule(s)\n")


def test_a_bad_periodic_file_stops_rq_worker_with_the_taskrail_message(
    settings, procs: Processes, env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "periodic.yaml"
    bad.write_text("periodic: [nightly]")
    files = {"TASKRAIL_IMPORTS": "tests.tasks_sched", "TASKRAIL_PERIODIC_FILE": str(bad)}
    proc = procs.worker("default", env=files)
    assert proc.wait(timeout=30) == 2
    message = f"taskrail: {bad}: 'periodic' must map schedule names to schedules, got list"
    worker_log = procs.log(proc)
    assert "Traceback" not in worker_log
    assert message in worker_log.splitlines()
    run = subprocess.run([str(BIN / "taskrail"), "periodic", "check"], env={**env, **files}, capture_output=True,
                         text=True)  # fmt: skip
    assert (run.returncode, run.stderr.strip()) == (2, message)
