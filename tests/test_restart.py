"""A worker restarted in place after SIGKILL, under the same ``--name``, starts (issue 22, defect 1).

Kubernetes and Compose restart an OOM- or liveness-killed container with the same command line, so
the same worker name. Real ``rq worker -w workers.Worker`` processes against a real server; a 3 s
heartbeat TTL makes the dead incarnation's claims come back quickly.
"""

from __future__ import annotations

import signal
import subprocess

import redis
import yaml
from rq import Worker as RQWorker

from config.scaling import load_profile
from deploy.render import render
from tests import tasks_recovery as rt
from tests.conftest import ROOT, Processes, live_workers, wait_for
from tests.test_recovery import FAST, completions, starts
from workers.health import check_health

NAME = "pod-a.rec.0"  # what the rendered Deployment passes: <pod name>.<queue>.0


def _start(procs: Processes, conn: redis.Redis, prefix: str, but: str = "") -> tuple[subprocess.Popen[bytes], str]:
    """Start a worker named NAME; wait until one named ``prefix``* (not ``but``) beats; its name."""
    proc = procs.worker("rec", name=NAME, env=FAST)

    def beating() -> str:
        assert proc.poll() is None, f"the restarted worker exited {proc.returncode}:\n{procs.log(proc)}"
        return next((n for n in live_workers(conn) if n.startswith(prefix) and n != but), "")

    return proc, str(wait_for(beating, 30, what=f"a live worker named {prefix}*"))


def _by_kind(files: dict[str, str], kind: str) -> dict:
    docs = [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _rq_names(conn: redis.Redis) -> set[str]:
    """The workers ``rq info`` lists."""
    return {w.name for w in RQWorker.all(connection=conn)}


def test_a_sigkilled_worker_restarts_under_its_name_and_its_job_comes_back(settings, procs: Processes,
                                                                           conn: redis.Redis) -> None:  # fmt: skip
    first, name = _start(procs, conn, NAME)
    assert name == NAME
    job = rt.long_first.delay(60, 0.1)
    wait_for(lambda: starts(conn, job.id), 30, what="the job running on the first worker")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert conn.hexists(f"taskrail:claims:{NAME}", job.id), "the killed worker should still hold its claim"

    # Restarted at once, as the kubelet does: RQ would refuse the name ("There exists an active worker").
    second, renamed = _start(procs, conn, f"{NAME}-")
    assert check_health(settings, "pod-a.").ok  # what `taskrail health --this-host` asks in the pod
    # The dead incarnation's claim is not hidden by the restart: the job runs again and completes once.
    assert job.get(timeout=60) == "done"
    assert completions(conn, job.id) == 1 and len(starts(conn, job.id)) == 2
    # rq info stops listing the killed worker once the leader has recovered its jobs.
    wait_for(lambda: _rq_names(conn) == {renamed}, 30, what=f"rq info listing only {renamed}")

    second.send_signal(signal.SIGKILL)
    second.wait(timeout=10)
    # The plain name is free again: nothing of the first incarnation is left.
    _third, name = _start(procs, conn, "pod-a.", but=renamed)
    assert name == NAME
    assert second.returncode == -signal.SIGKILL


def test_the_rendered_probe_follows_a_real_worker_without_starting_python(env, settings, procs: Processes,
                                                                         conn: redis.Redis) -> None:  # fmt: skip
    pod = _by_kind(render(load_profile(ROOT / "config" / "scaling.yaml", "production"), "kubernetes"), "Deployment")
    probe = pod["taskrail-worker-email"]["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["exec"]
    data_dir = env["TASKRAIL_DATA_DIR"]
    command = [part.replace("/app/data", data_dir).replace("-20 seconds", "-3 seconds") for part in probe["command"]]

    def passes(pod_name: str) -> bool:
        run = subprocess.run(command, env={"PATH": "/usr/bin:/bin", "POD_NAME": pod_name}, timeout=10)
        return run.returncode == 0

    assert not passes("pod-a")  # nothing started yet
    worker, _ = _start(procs, conn, NAME)
    assert passes("pod-a") and not passes("pod-b")  # its own pod's worker only
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    wait_for(lambda: not passes("pod-a"), 15, what="the probe failing once the worker is dead")
