"""Runbook rehearsals (docs/operations.md, "Runbooks"), with real workers against a real server.

"Backup and restore": a BGSAVE copy started as a new server hands back the jobs it shows running.
"Rotate the dashboard secret": a dashboard restarted with a new password and token ends every session
and takes neither old secret. "Total Redis loss" is rehearsed as an empty server at the same address (FLUSHALL): what the runbook
says is lost is gone, the running workers go on serving new jobs by themselves, and only a restart
lists them in RQ's registry (`rq info`) again.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
import requests
from rq import Worker as RQWorker

from config import load_settings
from config.embedded import free_port, start_server
from tasks import Client
from tests import tasks_observe as ot
from tests import tasks_recovery as rt
from tests.conftest import BIN, ROOT, Processes, live_workers, wait_for
from tests.tasks_web import PASSWORD, TOKEN, start_dashboard
from tests.test_metrics import OBS
from tests.test_recovery import FAST, completions, start_live, starts


def test_total_redis_loss_workers_serve_new_jobs_and_a_restart_re_registers_them(settings, procs: Processes,
                                                                                 conn: redis.Redis) -> None:  # fmt: skip
    worker = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="a worker")
    assert ot.double.delay(1).get(timeout=15) == 2
    delayed = ot.double.apply_async((5,), countdown=3600)
    assert conn.zcard("rq:scheduled:obs") == 1 and RQWorker.all(connection=conn)

    conn.flushall()  # the server comes back empty: no AOF, no RDB
    assert not conn.exists(f"rq:job:{delayed.id}")  # delayed jobs are among what is lost: re-drive them
    # The running worker needs nothing: its heartbeat, the leader lease and new jobs come back by themselves.
    wait_for(lambda: live_workers(conn) and conn.exists("taskrail:leader"), 15, what="heartbeat and leader again")
    assert ot.double.delay(2).get(timeout=15) == 4
    assert ot.double.apply_async((3,), countdown=0.2).get(timeout=15) == 6  # the scheduler runs again
    assert not RQWorker.all(connection=conn)  # but `rq info` no longer lists it: step 2, restart the workers

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, procs.log(worker)
    procs.worker("obs", env=OBS)
    wait_for(lambda: RQWorker.all(connection=conn), 15, what="the restarted worker in RQ's registry")
    assert ot.double.delay(4).get(timeout=15) == 8


def test_backup_and_restore_hands_back_the_jobs_the_copy_shows_running(env: dict[str, str], procs: Processes,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    original = start_server(tmp_path / "original", free_port())
    servers = [original]
    try:
        source = redis.Redis.from_url(original.url)
        wenv = {**FAST, "REDIS_URL": original.url}
        old = start_live(procs, source, "old-worker", "rec", env=wenv)
        client = Client(load_settings({**env, "REDIS_URL": original.url}))
        running = rt.long_first.apply_async((60, 0.1), client=client)  # runs: claimed by old-worker
        waiting = rt.long_first.apply_async((0.1, 0.1), client=client)  # behind it
        wait_for(lambda: starts(source, running.id), 30, what="the long job running")

        # The backup, as the runbook says: BGSAVE, wait until LASTSAVE changes, copy dump.rdb away.
        before = source.lastsave()
        # LASTSAVE counts whole seconds: start the save in a later second than the last one, or it cannot change.
        wait_for(lambda: time.time() >= before.timestamp() + 1, 5, what="the next second")
        source.bgsave()
        wait_for(lambda: source.lastsave() > before and not source.info("persistence")["rdb_bgsave_in_progress"],
                 30, what="the background save")  # fmt: skip
        restore = tmp_path / "restored"
        restore.mkdir()
        shutil.copy(original.data_dir / "dump.rdb", restore / "dump.rdb")  # and no AOF directory
        old.send_signal(signal.SIGKILL)  # the old deployment is gone
        old.wait(timeout=10)

        # With appendonly yes and no AOF yet, the server would start empty: load the copy with it off, then
        # turn it on (the server writes its AOF from memory), as the runbook says.
        restored = start_server(restore, free_port(), appendonly=False)
        servers.append(restored)
        target = redis.Redis.from_url(restored.url)
        target.config_set("appendonly", "yes")
        wait_for(lambda: (lambda p: p["aof_enabled"] and not p["aof_rewrite_in_progress"])(target.info("persistence")),
                 30, what="the AOF written")  # fmt: skip
        assert target.hexists("taskrail:claims:old-worker", running.id)  # the copy shows it running
        start_live(procs, target, "new-worker", "rec", env={**FAST, "REDIS_URL": restored.url})
        wait_for(lambda: completions(target, running.id) and completions(target, waiting.id), 60,
                 what="both jobs done on the restored server")  # fmt: skip
        assert not target.exists("taskrail:claims:old-worker")  # handed back by the leader, not lost
    finally:
        for srv in servers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(srv.pid, signal.SIGKILL)


def test_upgrade_with_old_and_new_workers_together(env: dict[str, str], settings, procs: Processes,
                                                   conn: redis.Redis) -> None:  # fmt: skip
    """An old worker fails a task only the new version has as a dead letter; requeued once all are new."""
    old = procs.worker("rec", "obs", env={"TASKRAIL_IMPORTS": "tests.tasks_observe"})  # before the release
    wait_for(lambda: live_workers(conn), 15, what="the old worker")
    assert ot.double.delay(1).get(timeout=15) == 2  # old tasks run on old workers
    new_task = rt.long_job.delay(0.1)  # a task only the new release registers, enqueued too early
    wait_for(lambda: conn.zcard("rq:failed:rec") == 1, 15, what="the dead letter")
    assert conn.hget(f"rq:job:{new_task.id}", "tr_exc_type") == b"TaskNotRegistered"

    new = procs.worker("rec", "obs", env={"TASKRAIL_IMPORTS": "tests.tasks_observe,tests.tasks_recovery"})
    old.send_signal(signal.SIGTERM)  # the rollout replaces the old worker: it drains and exits 0
    assert old.wait(timeout=30) == 0, procs.log(old)
    requeue = subprocess.run([str(BIN / "taskrail"), "failed", "requeue", "--all"], env=env, capture_output=True,
                             text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert requeue.returncode == 0, requeue.stderr
    assert new_task.get(timeout=15) == "done" and new.poll() is None


def test_rotating_the_dashboard_secret_ends_sessions_and_refuses_the_old_secrets(settings, procs: Processes) -> None:
    old = start_dashboard(procs)
    browser, _ = old.browser_session(PASSWORD)
    assert browser.get(old.url + "/api/queues", timeout=30).status_code == 200
    # The runbook: new values in the Secret, then a restart of the dashboard.
    old.proc.terminate()
    assert old.proc.wait(timeout=30) == 0
    new_password, new_token = "rotated horse battery staple", "rotated-t0ken"
    new = start_dashboard(procs, env={"TASKRAIL_DASHBOARD_PASSWORD": new_password,
                                      "TASKRAIL_DASHBOARD_TOKEN": new_token})  # fmt: skip
    # The browser's cookie (cookies ignore the port) belongs to the old process: logged out.
    assert browser.get(new.url + "/api/queues", timeout=30, allow_redirects=False).status_code in (302, 401)
    for secret in (PASSWORD, TOKEN):
        bearer = {"Authorization": f"Bearer {secret}"}
        assert requests.get(new.url + "/api/queues", headers=bearer, timeout=30).status_code == 401, secret
        form = requests.Session()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.get(new.url + "/login", timeout=30).text)
        answer = form.post(new.url + "/login", data={"password": secret, "csrf_token": csrf.group(1) if csrf else ""},
                           timeout=30, allow_redirects=False)  # fmt: skip
        assert answer.status_code == 401, secret
    assert new.get("/api/queues").status_code == 200  # the new token
    session, _ = new.browser_session(new_password)
    assert session.get(new.url + "/api/queues", timeout=30).status_code == 200
