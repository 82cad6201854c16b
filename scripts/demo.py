"""The demo behind ``make run``: server, supervisor, dashboard, demo jobs and a live table of them."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.connection import redis_url
from config.embedded import running_server, stop_server
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
        _start_dashboard(procs, port, out)
    else:
        procs.start(
            "dashboard", [str(BIN / "rq-dashboard"), "-b", "127.0.0.1", "-p", str(DASHBOARD_PORT), "-j", "-u", url]
        )
        out(f"dashboard: http://127.0.0.1:{port}/")
    return procs


def _start_dashboard(procs: Processes, port: int, out: Callable[[str], None]) -> None:
    """``taskrail dashboard`` with a one-time login link (and a password) shown here, on the terminal only.

    The secrets go to the dashboard in its environment, readable by this user only; the dashboard would
    otherwise make its own and print them into its log file.
    """
    from workers.dashboard.loginlink import LINK_ENV, LINK_TTL_S, link_url

    configured = any(procs.env.get(name) for name in DASHBOARD_SECRETS)
    password = None if configured else secrets.token_urlsafe(18)
    once = secrets.token_urlsafe(32)
    extra = {LINK_ENV: once, **({DASHBOARD_SECRETS[0]: password} if password else {})}
    procs.start("dashboard", [str(BIN / "taskrail"), "dashboard", "--port", str(port)], extra)
    base = f"http://127.0.0.1:{port}"
    out(f"dashboard: {base}/")
    out(f"  log in: {link_url(base, once)}  (single use, within {LINK_TTL_S // 60} minutes, from this machine)")
    if password:
        out(f"  or with the password for this run: {password}")


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
    drawn = 0  # lines of the table on screen: redrawn in place, so the login lines above it stay readable
    while not stop():
        _adopt_children(jobs)
        everyone = [j for job in jobs for j in (job, *job.children)]
        rows = {j.label: describe(j) for j in everyone}
        if tty:
            lines = [f"{'job':34} {'state':9} {'progress':27} detail"] + [
                f"{label[:34]:34} {s:9} {p:27} {d}" for label, (s, p, d) in rows.items()
            ]
            width = shutil.get_terminal_size().columns - 1  # a wrapped line would throw the redraw off
            lines = [line[:width] for line in lines]
            out((f"\x1b[{drawn}F\x1b[J" if drawn else "") + "\n".join(lines))
            drawn = len(lines)
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


CALL_EXAMPLE = 'call tasks.emails.send_email dave@example.com Hello --kwargs \'{"text": "hi"}\' --wait'


def _taskrail_command() -> str:
    """How to run this taskrail from this directory: ``taskrail`` if the PATH finds it, else its path."""
    own = BIN / "taskrail"
    if shutil.which("taskrail") == str(own):
        return "taskrail"
    relative = os.path.relpath(own)
    return relative if not relative.startswith("..") else str(own)


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
    Ctrl-C (or SIGTERM) stops the processes it started, and the embedded server if it started that too.
    """
    was_running = settings.redis_url is None and running_server(settings.data_dir) is not None
    url = redis_url(settings)
    out(
        f"server: {redact_url(url)}"
        + ("" if settings.redis_url else f" (embedded, data in {settings.data_dir / 'redis'})")
    )
    interrupted = {"flag": False}
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: interrupted.__setitem__("flag", True))
    procs = Processes({}, settings.data_dir)
    try:
        procs = start_processes(settings, url, commands, port, out)
        return _show(settings.replace(redis_url=url), once, timeout_s, procs, out, lambda: interrupted["flag"])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        _stop_all(settings, procs, url, started_server=settings.redis_url is None and not was_running, out=out)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _show(
    settings: Settings,
    once: bool,
    timeout_s: float,
    procs: Processes,
    out: Callable[[str], None],
    stop: Callable[[], bool],
) -> bool:
    """Send the demo jobs and follow them; unless ``once``, wait for Ctrl-C. True unless a job went wrong."""
    jobs = submit_jobs(Client(settings))
    ok = follow(jobs, timeout_s if once else None, out, stop)
    if stop():
        return True
    out("all demo jobs finished as expected" if ok else f"demo incomplete; dead processes: {procs.dead() or 'none'}")
    if not once and ok:
        out(
            f"still running: open the dashboard, or send more jobs from another terminal, e.g.\n  {_taskrail_command()} {CALL_EXAMPLE}"
        )
        out("Ctrl-C stops the workers, the dashboard and the server this run started")
        while not stop():
            time.sleep(0.2)
    return ok


def _stop_all(settings: Settings, procs: Processes, url: str, started_server: bool, out: Callable[[str], None]) -> None:
    """Stop what this run started and say what was stopped and what was left running."""
    names = ", ".join(name for name, _ in procs.children)
    if names:
        out(f"stopping {names} gracefully...")
        procs.stop(timeout_s=settings.shutdown_timeout_s + 5)
        out(f"stopped: {names}")
    if started_server:
        stop_server(settings.data_dir)
        out("stopped: the embedded server (this run started it)")
    elif settings.redis_url is None:
        out(f"left running: the embedded server at {redact_url(url)}, which was running before; "
            "`taskrail server stop` stops it")  # fmt: skip
    else:
        out(f"left alone: the server at REDIS_URL {redact_url(url)}")
