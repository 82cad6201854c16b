"""The supervisor end to end: real ``taskrail supervise`` processes running real ``rq worker`` children."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
import redis
from rq import Worker as RQWorker

from config.scaling import Autoscale
from scripts.cli import main as cli_main
from scripts.cmd_supervise import _status_text
from tests.conftest import BIN, ROOT, Processes, live_workers, wait_for
from workers.exitcodes import RET_CONFIG, RET_ERROR, RET_GAVE_UP, RET_OK, RET_UNCLEAN
from workers.supervisor.autoscale import UP_INTERVAL_S, Autoscaler, QueueLoad
from workers.supervisor.restarts import RestartIntensity
from workers.supervisor.status import QueueStatus

TASKS = '''
"""Tasks the supervisor tests run; each counts its runs in Redis."""
import functools
import os
import time

import redis

from tasks import task


@functools.cache
def _conn():
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@task(queue="email")
def count(tag, pause_s=0.0):
    time.sleep(pause_s)
    _conn().hincrby("sv:done", tag, 1)
    return tag


@task(queue="email")
def slow(tag, seconds):
    conn = _conn()
    conn.hincrby("sv:started", tag, 1)
    time.sleep(seconds)
    conn.hincrby("sv:done", tag, 1)
    return tag
'''

# Imported by every worker: the ones serving 'email' fail at start, as a broken deploy would.
CRASHY = """
import sys

if "email" in sys.argv:
    raise RuntimeError("this worker cannot start")
"""

PROFILE = """
queues: [email, reports]
profiles:
  t:
    mode: {mode}
    defaults: {{shutdown_timeout_s: {timeout}, max_restarts: 5, max_seconds: 30}}
    queues:
      email: {email}
      reports: {reports}
"""


@pytest.fixture(scope="session")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sv_tasks")
    (directory / "sv_tasks.py").write_text(TASKS)
    (directory / "sv_crashy.py").write_text(CRASHY)
    sys.path.insert(0, str(directory))
    return directory


@pytest.fixture
def sv(task_dir: Path, settings: object) -> ModuleType:
    """The test tasks, enqueued from this process against the test server."""
    return importlib.import_module("sv_tasks")


class Supervisors:
    """Starts ``taskrail supervise`` processes; stops them gracefully at the end of the test."""

    def __init__(self, procs: Processes, tmp_path: Path, task_dir: Path) -> None:
        self.procs = procs
        self.tmp_path = tmp_path
        self.env = {"TASKRAIL_IMPORTS": "sv_tasks", "PYTHONPATH": f"{procs.env['PYTHONPATH']}:{task_dir}"}
        self.started: list[subprocess.Popen[bytes]] = []

    def profile(self, email: str, reports: str = "{workers: 0}", timeout: float = 2, mode: str = "strict") -> Path:
        path = self.tmp_path / "scaling.yaml"
        path.write_text(PROFILE.format(email=email, reports=reports, timeout=timeout, mode=mode))
        return path

    def start(self, path: Path, node: str, **env: str) -> subprocess.Popen[bytes]:
        args = [str(BIN / "taskrail"), "supervise", "--file", str(path), "--profile", "t", "--node", node]
        proc = self.procs.start(args, env={**self.env, **env}, name=f"supervise-{node}")
        self.started.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.procs.log(proc)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def sups(procs: Processes, tmp_path: Path, task_dir: Path) -> object:
    manager = Supervisors(procs, tmp_path, task_dir)
    yield manager
    manager.stop_all()


def node_workers(conn: redis.Redis, node: str) -> dict[str, tuple[str, ...]]:
    """Live workers of one supervisor (fresh heartbeat): name -> queues as RQ registered them."""
    found = {}
    for name in live_workers(conn):
        if name.startswith(f"{node}."):
            queues = conn.hget(f"rq:worker:{name}", "queues")
            found[name] = tuple((queues or b"").decode().split(","))
    return found


def counts(conn: redis.Redis, node: str) -> dict[str, int]:
    return dict(Counter(name.split(".")[1] for name in node_workers(conn, node)))


def taskrail(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "taskrail"), *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def published(conn: redis.Redis, node: str) -> dict:
    """The state a supervisor publishes for ``taskrail status`` and ``taskrail scale``."""
    raw = conn.get(f"taskrail:supervisor:{node}")
    return json.loads(raw) if raw else {"workers": []}


def done(conn: redis.Redis) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in conn.hgetall("sv:done").items()}


# ---- real processes -------------------------------------------------------------------------


def test_profile_gives_exactly_the_planned_rq_workers_and_status_shows_them(sups, conn, env) -> None:
    email = "{workers: 2, also: [reports], concurrency: 3, weight: 4, rate_limit: 50/s, max_jobs: 1000}"
    path = sups.profile(email=email, reports="{workers: 1}", mode="weighted")
    sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 2, "reports": 1}, 30, what="3 workers")
    pid = int(conn.hget("rq:worker:n1.email.1", "pid"))
    child_env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
    assert {k: child_env[k] for k in child_env if k.startswith("TASKRAIL_") and k not in ("TASKRAIL_DATA_DIR", "TASKRAIL_SERVER_FILE")} == {
        "TASKRAIL_IMPORTS": "sv_tasks", "TASKRAIL_PROFILE": "t", "TASKRAIL_CONCURRENCY": "3",
        "TASKRAIL_ISOLATION": "inline", "TASKRAIL_MAX_JOBS": "1000", "TASKRAIL_MAX_MEMORY_MB": "0",
        "TASKRAIL_SHUTDOWN_TIMEOUT_S": "2", "TASKRAIL_MODE": "weighted",
        "TASKRAIL_QUEUE_WEIGHTS": "email=4,reports=1", "TASKRAIL_QUEUE_RATE_LIMITS": "email=50/s",
    }  # fmt: skip
    registered = {w.name: w.queue_names() for w in RQWorker.all(connection=conn)}  # what `rq info` lists
    assert registered == {"n1.email.1": ["email", "reports"], "n1.email.2": ["email", "reports"],
                          "n1.reports.1": ["reports"]}  # fmt: skip
    assert conn.get("taskrail:leader").decode() in registered  # one scheduler, elected among the workers
    # Let the supervisor run a while after the last start (its published uptimes say so): nothing more appears.
    ran = lambda: (ws := published(conn, "n1")["workers"]) and all(w["uptime_s"] >= 2 for w in ws)  # noqa: E731
    wait_for(ran, 15, what="2 s of uptime")
    assert len(RQWorker.all(connection=conn)) == 3

    status = taskrail("status", "--json", "--file", str(path), env=env)
    assert status.returncode == RET_OK, status.stderr
    report = json.loads(status.stdout)
    assert [(q["name"], q["workers_total"]) for q in report["queues"]][:2] == [("email", 2), ("reports", 3)]
    (sup,) = report["supervisors"]
    assert sup["node"] == "n1" and sup["queues"]["email"] == {"target": 2, "running": 2, "pinned": False,
                                                              "autoscale": None}  # fmt: skip
    assert sorted(w["name"] for w in sup["workers"]) == sorted(registered)
    table = taskrail("status", "--file", str(path), env=env).stdout
    assert re.search(r"email\s+0\s+0\s+0\s+0\s+0/2", table) and "n1.reports.1 pid" in table, table
    worker = r"\n      n1\.{}\.{} pid \d+ up \d+s running"
    layout = r"\n    email: 2/2 processes" + worker.format("email", 1) + worker.format("email", 2)
    assert re.search(layout + r"\n    reports: 1/1 processes" + worker.format("reports", 1), table), table


def test_sigkilled_worker_is_replaced_within_5s(sups, conn, record_property) -> None:
    path = sups.profile(email="{workers: 2}", reports="{workers: 1}")
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 2, "reports": 1}, 30, what="3 workers")
    figures = []
    for victim in ("n1.email.1", "n1.reports.1"):
        before = set(node_workers(conn, "n1"))
        os.kill(int(conn.hget(f"rq:worker:{victim}", "pid")), signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda b=before: set(node_workers(conn, "n1")) - b, 10, interval=0.01, what="a replacement")
        figures.append(round(time.monotonic() - killed_at, 2))
        assert victim not in {w.name for w in RQWorker.all(connection=conn)}  # `rq info` forgets it
    record_property("replacement_registered_s", figures)
    print(f"\nSIGKILL to replacement registered (heartbeat): {figures} s")
    assert max(figures) < 5.0, figures  # the target, 2 s, is what the recorded figures show on an idle machine
    log = sups.log(proc)
    assert re.search(r"worker n1\.email\.1 crashed \(killed by SIGKILL\) after [\d.]+s; replacing it now", log), log
    assert re.search(r"worker n1\.email\.1-\w{4} started \(pid \d+\) on email, replacing n1\.email\.1", log), log


def test_crash_loop_gives_up_past_the_restart_intensity(sups, conn) -> None:
    text = PROFILE.format(email="{workers: 1, max_restarts: 2}", reports="{workers: 1}", timeout=2, mode="strict")
    path = sups.tmp_path / "crashy.yaml"
    path.write_text(text)
    proc = sups.start(path, "n1", TASKRAIL_IMPORTS="sv_tasks,sv_crashy")
    assert proc.wait(timeout=60) == RET_GAVE_UP
    log = sups.log(proc)
    assert "replacing it now (crash 1 of 2 allowed in 30s)" in log, log
    assert "replacing it in 0.5s (crash 2 of 2 allowed in 30s)" in log, log  # the back-off grows
    assert re.search(r"gave up: queue 'email': 3 crashes within 30s, more than max_restarts=2; last: worker "
                     r"n1\.email\.1(-\w{4})? exit 1, RET_ERROR", log), log  # fmt: skip
    assert "worker n1.reports.1 stopped (exit 0, RET_OK)" in log, log  # the healthy queue drained gracefully
    assert not node_workers(conn, "n1")


def test_sigterm_during_a_burst_of_500_jobs_runs_each_exactly_once(sups, sv, conn) -> None:
    path = sups.profile(email="{workers: 2}", timeout=5)
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 2}, 30, what="2 workers")
    sv.count.enqueue_many([(f"j{i}", 0.005) for i in range(500)])
    wait_for(lambda: conn.hlen("sv:done") >= 100, 30, what="100 jobs done")
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == RET_OK, sups.log(proc)
    drain_s = time.monotonic() - stopped_at
    print(f"\ndrain with 2 busy workers took {drain_s:.2f}s")
    assert drain_s < 5.0  # the shutdown timeout: short jobs finish long before it
    first = done(conn)
    assert set(first.values()) == {1} and 100 <= len(first) < 500
    assert conn.llen("rq:queue:email") == 500 - len(first)  # the rest went back to the queue, none lost
    assert not conn.keys("taskrail:claims:*") and conn.zcard("rq:wip:email") == 0

    sups.start(path, "n2")
    wait_for(lambda: conn.hlen("sv:done") == 500, 60, interval=0.1, what="all 500 jobs")
    assert set(done(conn).values()) == {1}, "a job completed twice"


def test_job_longer_than_the_timeout_is_requeued_then_completes_after_restart(sups, sv, conn) -> None:
    path = sups.profile(email="{workers: 1}", timeout=1)
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 1}, 30, what="1 worker")
    result = sv.slow.delay("long", 3)
    wait_for(lambda: conn.hget("sv:started", "long"), 15, what="the long job to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == RET_UNCLEAN  # drained, but a job had to be requeued
    assert "1 running jobs passed shutdown_timeout_s and were requeued" in sups.log(proc)
    assert conn.lindex("rq:queue:email", 0).decode() == result.id  # at the front of its queue
    assert conn.hget("sv:done", "long") is None

    sups.start(path, "n2")
    wait_for(lambda: conn.hget("sv:done", "long") == b"1", 30, what="the long job to complete")
    assert conn.hget("sv:started", "long") == b"2"


def test_sighup_and_taskrail_scale_change_counts_without_interrupting_jobs(sups, sv, conn, env) -> None:
    path = sups.profile(email="{workers: 1}", reports="{workers: 1}", timeout=10)
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 1, "reports": 1}, 30, what="2 workers")
    sv.slow.enqueue_many([(f"h{i}", 1.0) for i in range(8)])

    path.write_text(path.read_text().replace("{workers: 1}", "{workers: many}", 1))  # a broken edit
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "profile not reloaded, the running one stays" in sups.log(proc), 10, what="refused reload")
    assert "queue 'email': workers must be an integer 0 or more, got 'many'" in sups.log(proc)
    sups.profile(email="{workers: 3}", reports="{workers: 0}", timeout=10)  # edit the file in place
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: counts(conn, "n1") == {"email": 3}, 30, what="3 email workers, no reports worker")
    assert "SIGHUP received: reloaded profile 't' from" in sups.log(proc)
    assert "email 1 -> 3, reports 1 -> 0" in sups.log(proc)

    wait_for(lambda: conn.hlen("sv:started") >= 3, 15, what="jobs running on the new workers")
    scaled = taskrail("scale", "email=1", "--file", str(path), env=env)
    assert scaled.returncode == RET_OK, scaled.stderr
    assert "pinned email=1 on every supervisor" in scaled.stdout and "n1: applied (email=1, reports=0)" in scaled.stdout
    wait_for(lambda: counts(conn, "n1") == {"email": 1}, 30, what="back to 1 email worker")
    wait_for(lambda: len(done(conn)) == 8, 30, what="all 8 jobs")
    assert set(done(conn).values()) == {1}
    assert {k: int(v) for k, v in conn.hgetall("sv:started").items()} == {f"h{i}".encode(): 1 for i in range(8)}
    events = [fields[b"event"] for _, fields in conn.xrange("taskrail:events:email")]
    assert b"interrupted" not in events


def test_taskrail_scale_reaches_every_supervisor_or_one_node(sups, conn, settings, capsys) -> None:
    path = sups.profile(email="{workers: 1}")
    for node in ("n1", "n2"):
        sups.start(path, node)
    both = lambda e1, e2: counts(conn, "n1") == {"email": e1} and counts(conn, "n2") == {"email": e2}  # noqa: E731
    wait_for(lambda: both(1, 1), 30, what="1 worker on each node")
    twin = taskrail("supervise", "--file", str(path), "--profile", "t", "--node", "n1", env=sups.procs.env)
    assert twin.returncode == RET_ERROR and "another supervisor already runs as node 'n1'" in twin.stderr
    scale = lambda *args: cli_main(["scale", *args, "--file", str(path)])  # noqa: E731  (the command, in-process)

    assert scale("email=2") == RET_OK
    assert "n1: applied (email=2, reports=0)\nn2: applied (email=2, reports=0)" in capsys.readouterr().out
    wait_for(lambda: both(2, 2), 30, what="2 workers on each node")
    assert scale("email=1", "--node", "n2") == RET_OK  # one machine only; its own pin wins
    assert "n2: applied (email=1, reports=0)" in capsys.readouterr().out
    wait_for(lambda: both(2, 1), 30, what="n2 alone back at 1")
    assert scale("--reset") == RET_OK  # without --node: the node's own pin goes too
    assert "unpinned every queue on every supervisor, node pins included" in capsys.readouterr().out
    wait_for(lambda: both(1, 1), 30, what="both back to the profile's 1")
    assert not conn.exists("taskrail:scale:node:n2")

    assert scale("emial=2") == RET_CONFIG
    assert "unknown queue 'emial'; the scaling file names: email, reports" in capsys.readouterr().err


def test_autoscale_goes_from_min_to_max_under_a_backlog_and_back_when_idle(sups, sv, conn) -> None:
    path = sups.profile(email="{workers: 1, autoscale: {min: 1, max: 3, backlog_per_worker: 5, cooldown_s: 1}}")
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 1}, 30, what="1 worker")
    sv.count.enqueue_many([(f"a{i}", 0.2) for i in range(60)])  # 12 s for one worker: time for two to start
    seen: list[int] = []

    def reaches(n: int) -> bool:
        seen.append(counts(conn, "n1").get("email", 0))
        return seen[-1] == n

    wait_for(lambda: reaches(3), 30, interval=0.1, what="3 workers under the backlog")
    wait_for(lambda: len(done(conn)) == 60, 30, what="the backlog to drain")
    wait_for(lambda: reaches(1), 30, interval=0.1, what="back to 1 worker")
    assert max(seen) == 3
    log = sups.log(proc)
    assert re.search(r"autoscale email: 1 -> 3 workers \(\d+ waiting > 5 per worker x 1\)", log), log
    assert re.search(r"autoscale email: 3 -> 2 workers \(quiet for 1s: \d+ waiting", log), log
    assert "autoscale email: 2 -> 1 workers" in log
    assert set(done(conn).values()) == {1}


def test_recycled_worker_is_replaced_without_counting_as_a_crash(sups, sv, conn) -> None:
    path = sups.profile(email="{workers: 1, max_jobs: 5}")
    proc = sups.start(path, "n1")
    wait_for(lambda: counts(conn, "n1") == {"email": 1}, 30, what="1 worker")
    sv.count.enqueue_many([(f"r{i}", 0) for i in range(12)])
    wait_for(lambda: len(done(conn)) == 12, 30, what="12 jobs")
    assert set(done(conn).values()) == {1}
    log = sups.log(proc)
    assert log.count("worker n1.email.1 recycled (passed max_jobs or max_memory_mb)") >= 2, log
    assert "started (pid" in log and ", replacing n1.email.1" in log and "crashed" not in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "t"], "profile 't': queue 'email': workers must be an integer 0 or more, got -1"),
        (["--profile", "prod"], "no profile 'prod'; profiles in this file: t"),
    ],
)
def test_a_malformed_profile_starts_nothing(sups, conn, env, args: list[str], message: str) -> None:
    path = sups.profile(email="{workers: -1}")
    if "prod" in args:
        path = sups.profile(email="{workers: 1}")
    result = taskrail("supervise", "--file", str(path), *args, env=env)
    assert result.returncode == RET_CONFIG
    assert f"{path}: {message}" in result.stderr, result.stderr
    assert not RQWorker.all(connection=conn) and not conn.exists("taskrail:supervisors")


# ---- decisions, without processes ------------------------------------------------------------


def test_autoscale_grows_at_once_and_shrinks_one_idle_worker_per_cooldown() -> None:
    rule = Autoscale(min=1, max=4, backlog_per_worker=10, max_wait_s=30, cooldown_s=60)
    scaler = Autoscaler()
    scaler.reset("q", 1, now=0)
    grow = scaler.observe("q", rule, QueueLoad(waiting=35, oldest_wait_s=1, idle_workers=0), now=10)
    assert grow is not None and (grow.old, grow.new) == (1, 4) and "35 waiting > 10 per worker x 1" in str(grow)
    assert scaler.observe("q", rule, QueueLoad(0, 0, idle_workers=4), now=20) is None  # quiet, not for long
    assert scaler.observe("q", rule, QueueLoad(0, 0, idle_workers=4), now=79) is None
    shrink = scaler.observe("q", rule, QueueLoad(0, 0, idle_workers=4), now=80)
    assert shrink is not None and (shrink.old, shrink.new) == (4, 3) and "quiet for 60s" in shrink.reason
    assert scaler.observe("q", rule, QueueLoad(0, 0, idle_workers=3), now=100) is None  # one step per cooldown
    assert scaler.observe("q", rule, QueueLoad(0, 0, idle_workers=0), now=200) is None  # none idle: keep them
    old = scaler.observe("q", rule, QueueLoad(0, 45, idle_workers=1), now=201)  # the oldest job waits too long
    assert old is not None and old.new == 4 and "oldest job waited 45.0s > max_wait_s 30" in old.reason


def test_autoscale_does_not_flap_around_its_trigger() -> None:
    rule = Autoscale(min=1, max=8, backlog_per_worker=10, cooldown_s=5)
    scaler = Autoscaler()
    scaler.reset("q", 2, now=0)
    changes = []
    for step in range(200):  # the backlog hovers around the trigger for 2 workers: 16..24
        waiting = 16 + (step * 7) % 9
        decision = scaler.observe("q", rule, QueueLoad(waiting, 0, idle_workers=1), now=step * UP_INTERVAL_S / 4)
        if decision:
            changes.append((decision.old, decision.new))
    assert changes == [(2, 3)], changes  # up once past 20, never back down while the backlog stays above 10


def test_restart_back_off_grows_and_intensity_is_passed_after_max_restarts() -> None:
    limits = RestartIntensity(max_restarts=3, max_seconds=10)
    delays = [limits.record(now=t) for t in (0, 1, 2)]
    assert delays == [0.0, 0.5, 1.0] and not limits.exceeded(now=2)
    assert limits.record(now=3) == 2.0 and limits.exceeded(now=3)  # 4 crashes within 10 s
    assert not limits.exceeded(now=11.5)  # the first two have left the window
    assert limits.record(now=30) == 0.0  # a fresh start after a quiet spell


def test_the_status_example_in_docs_is_what_the_command_prints() -> None:
    docs = (ROOT / "docs" / "supervisor.md").read_text()
    example = docs.split("## `taskrail status`\n\n```text\n", 1)[1].split("```", 1)[0]
    rows = [QueueStatus("critical", 0, 0, 0, 0, 0, 2, 12, None), QueueStatus("email", 340, 4, 2, 1, 2, 2, 5210, 3.0)]
    queues = {"critical": {"target": 2, "running": 2, "pinned": False, "autoscale": None},
              "email": {"target": 2, "running": 2, "pinned": True, "autoscale": [2, 8]}}  # fmt: skip
    workers = [  # as a supervisor publishes them: in start order, not grouped
        {"name": "web1.critical.1", "queue": "critical", "pid": 4249, "uptime_s": 780, "state": "running"},
        {"name": "web1.email.1", "queue": "email", "pid": 4250, "uptime_s": 780, "state": "running"},
        {"name": "web1.critical.2", "queue": "critical", "pid": 4251, "uptime_s": 780, "state": "running"},
        {"name": "web1.email.2", "queue": "email", "pid": 4252, "uptime_s": 95, "state": "stopping"},
    ]
    sup = {"node": "web1", "pid": 4242, "profile": "production", "started_at": time.time() - 7200,
           "draining": False, "queues": queues, "workers": workers}  # fmt: skip
    assert _status_text(rows, [sup]) + "\n" == example
