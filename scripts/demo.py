"""The demo behind ``make run``: server, supervisor, dashboard, demo jobs and a live table of them."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.embedded import ensure_server
from config.settings import Settings, writable_dir
from config.urls import redact_url
from tasks.core.client import Client
from tasks.core.result import AsyncResult

__all__ = ["DASHBOARD_PORT", "DemoJob", "run_demo"]

BIN = Path(sys.executable).parent
BAD_ADDRESS = "not-an-address"
DASHBOARD_PORT = 9181
DASHBOARD_SECRETS = ("TASKRAIL_DASHBOARD_PASSWORD", "TASKRAIL_DASHBOARD_TOKEN")
LOG_MODE = 0o600  # logs may hold secrets (a URL in a traceback): for the user only, whatever the umask


@dataclass
class DemoJob:
    """One job the demo follows, with what it is expected to end as."""

    label: str
    result: AsyncResult
    expect_failure: bool = False
    children: list[DemoJob] = field(default_factory=list)


def submit_jobs(client: Client) -> list[DemoJob]:
    """Send demo email, report and fan-out jobs; returns what to follow."""
    from tasks.emails import send_email
    from tasks.fanout import send_newsletter
    from tasks.reports import generate_report

    people = ["alice@example.com", "bob@example.org", "carol@example.net"]
    jobs = [
        DemoJob(f"email to {to}", send_email.apply_async((to, "Welcome to taskrail"), {
            "html": f"<h1>Hello {to.split('@')[0].title()}</h1><p>Your jobs run on taskrail.</p>",
            "text": f"Hello {to.split('@')[0].title()}, your jobs run on taskrail.",
        }, client=client))
        for to in people
    ]  # fmt: skip
    jobs.append(DemoJob(f"email to {BAD_ADDRESS}", send_email.apply_async((BAD_ADDRESS, "Oops"), {"text": "x"},
                                                                           client=client), expect_failure=True))  # fmt: skip
    for index, report_type in enumerate(_report_types()[:2]):
        jobs.append(DemoJob(f"report {report_type}", generate_report.apply_async((report_type,), {"user_id": index + 1},
                                                                                 client=client)))  # fmt: skip
    recipients = [f"reader{i}@example.com" for i in range(1, 6)] + [BAD_ADDRESS]
    html = "<h1>taskrail weekly</h1><p>One child job per recipient, one summary at the end.</p>"
    jobs.append(DemoJob("newsletter to 6 readers", send_newsletter.apply_async((recipients, "taskrail weekly", html),
                                                                               client=client)))  # fmt: skip
    return jobs


def _report_types() -> list[str]:
    from tasks import reports

    types = getattr(reports, "REPORT_TYPES", None)
    return list(types) if types else ["sales", "signups"]


class Processes:
    """The demo's child processes, stopped gracefully (SIGTERM, then SIGKILL) at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], extra_env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_dir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_MODE)
        os.fchmod(fd, LOG_MODE)  # a log left by an older run may have been made with the umask's mode
        with os.fdopen(fd, "ab") as log:
            env = {**self.env, **(extra_env or {})}
            proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))

    def stop(self, timeout_s: float) -> None:
        for _, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def dead(self) -> list[str]:
        return [f"{name} (exit {proc.returncode})" for name, proc in self.children if proc.poll() is not None]


def start_processes(
    settings: Settings, url: str, commands: set[str], port: int, out: Callable[[str], None]
) -> Processes:
    env = {**os.environ, "REDIS_URL": url, "TASKRAIL_DATA_DIR": str(settings.data_dir)}
    procs = Processes(env, writable_dir(settings.data_dir) / "logs")
    taskrail = str(BIN / "taskrail")
    if "supervise" in commands:
        procs.start("supervisor", [taskrail, "supervise", "--profile", settings.profile])
        out(f"supervisor: profile {settings.profile!r} from {settings.scaling_file} (logs in {procs.log_dir})")
    else:
        for queue in ("email", "reports", "default"):
            procs.start(
                f"worker-{queue}", [str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq", queue]
            )
        out(f"workers: email, reports, default (logs in {procs.log_dir})")
    if "dashboard" in commands:
        # Made here and shown once on the terminal: the dashboard would print its own into its log file.
        password = None if any(env.get(name) for name in DASHBOARD_SECRETS) else secrets.token_urlsafe(18)
        extra = {DASHBOARD_SECRETS[0]: password} if password else {}
        procs.start("dashboard", [taskrail, "dashboard", "--port", str(port)], extra)
        out(f"dashboard: http://127.0.0.1:{port}/" + (f" (password for this run: {password})" if password else ""))
    else:
        procs.start(
            "dashboard", [str(BIN / "rq-dashboard"), "-b", "127.0.0.1", "-p", str(DASHBOARD_PORT), "-j", "-u", url]
        )
        out(f"dashboard: http://127.0.0.1:{port}/")
    return procs


def describe(job: DemoJob) -> tuple[str, str, str]:
    """(state, progress, detail) for the live table."""
    snap = job.result.snapshot()
    state = AsyncResult.state_of(snap)
    progress = snap.get("tr_progress")
    bar = _bar(float(progress)) if progress else (_bar(100.0) if state == "SUCCESS" else "")
    detail = ""
    if state == "FAILURE":
        detail = f"{snap.get('tr_exc_type')}: {snap.get('tr_exc_message')}"[:70]
    elif state == "SUCCESS":
        detail = _summary(job.result.result)
    elif snap.get("tr_progress_note"):
        detail = snap.get("tr_progress_note")
    return state, bar, detail


def _bar(percent: float, width: int = 20) -> str:
    filled = int(width * percent / 100)
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:3.0f}%"


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        keys = [k for k in ("path", "sent", "failed", "transport", "rows", "callback_id") if k in value]
        return ", ".join(f"{k}={value[k] if not isinstance(value[k], list) else len(value[k])}" for k in keys)[:70]
    return repr(value)[:70]


def follow(jobs: list[DemoJob], timeout_s: float | None, out: Callable[[str], None], stop: Callable[[], bool]) -> bool:
    """Show a live table until every job (and every job it fans out to) is ready; True if all went as expected."""
    tty = sys.stdout.isatty()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: dict[str, tuple[str, str, str]] = {}
    while not stop():
        _adopt_children(jobs)
        everyone = [j for job in jobs for j in (job, *job.children)]
        rows = {j.label: describe(j) for j in everyone}
        if tty:
            lines = [f"{'job':34} {'state':9} {'progress':27} detail"] + [
                f"{label[:34]:34} {s:9} {p:27} {d}" for label, (s, p, d) in rows.items()
            ]
            out("\x1b[H\x1b[J" + "\n".join(lines))
        else:
            for label, row in rows.items():
                if last.get(label, ("",))[0] != row[0]:
                    out(f"{label}: {row[0]} {row[2]}".rstrip())
        last = rows
        if all(state in ("SUCCESS", "FAILURE", "REVOKED") for state, _, _ in rows.values()):
            return all((rows[j.label][0] == "FAILURE") == j.expect_failure for j in everyone)
        if deadline is not None and time.monotonic() > deadline:
            out("timed out waiting for demo jobs")
            return False
        time.sleep(0.5 if tty else 0.2)
    return False


def _adopt_children(jobs: list[DemoJob]) -> None:
    """Follow the summary job of a fan-out once the fan-out job says which it is."""
    for job in jobs:
        if job.children or not job.result.successful():
            continue
        value = job.result.result
        callback = value.get("callback_id") if isinstance(value, dict) else None
        if callback:
            job.children.append(DemoJob("  newsletter summary", AsyncResult(callback, job.result.client)))


def run_demo(
    settings: Settings,
    once: bool,
    timeout_s: float,
    commands: set[str],
    port: int = DASHBOARD_PORT,
    out: Callable[[str], None] = print,
) -> bool:
    """Run the whole demo; with ``once`` return when every demo job is done, else run until Ctrl-C.

    ``commands`` are the taskrail subcommands available (supervise, dashboard), used when present.
    """
    # The demo is one of the two commands that start the embedded server (or reuse the user's running one).
    url = settings.redis_url or ensure_server(settings.data_dir, settings.server_file).url
    out(f"server: {redact_url(url)}" + ("" if settings.redis_url else f" (embedded, named by {settings.server_file})"))
    procs = start_processes(settings, url, commands, port, out)
    interrupted = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: interrupted.__setitem__("flag", True))
    try:
        client = Client(settings.replace(redis_url=url))
        jobs = submit_jobs(client)
        ok = follow(jobs, timeout_s if once else None, out, lambda: interrupted["flag"])
        out(
            "all demo jobs finished as expected" if ok else f"demo incomplete; dead processes: {procs.dead() or 'none'}"
        )
        if not once and ok:
            out("still running: open the dashboard, send more jobs, Ctrl-C to stop")
            while not interrupted["flag"]:
                time.sleep(0.5)
        return ok
    except KeyboardInterrupt:
        return True
    finally:
        out("stopping workers and dashboard gracefully...")
        procs.stop(timeout_s=settings.shutdown_timeout_s + 5)
        out("stopped")
