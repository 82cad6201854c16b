"""The demo behind ``make run``: server, supervisor, dashboard, demo jobs and a live table of them."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.embedded import ensure_server, running_server
from config.settings import Settings
from config.urls import redact_url
from scripts.demo_processes import Processes, start_processes, stop_all
from tasks.core.client import Client
from tasks.core.result import AsyncResult

__all__ = ["DASHBOARD_PORT", "DemoJob", "run_demo"]

BIN = Path(sys.executable).parent
BAD_ADDRESS = "not-an-address"
DASHBOARD_PORT = 9181


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
    # The demo is one of the two commands that start the embedded server (or reuse the user's running one).
    was_running = settings.redis_url is None and running_server(settings.server_file) is not None
    url = settings.redis_url or ensure_server(settings.data_dir, settings.server_file).url
    out(f"server: {redact_url(url)}" + ("" if settings.redis_url else f" (embedded, named by {settings.server_file})"))
    interrupted = {"flag": False}
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: interrupted.__setitem__("flag", True))
    procs = Processes({}, settings.data_dir)  # none yet, if Ctrl-C comes before they start
    try:
        procs = start_processes(settings, url, commands, port, out)
        return _show(settings.replace(redis_url=url), once, timeout_s, procs, out, lambda: interrupted["flag"])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_all(settings, procs, url, started_server=settings.redis_url is None and not was_running, out=out)
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
        out("still running: open the dashboard, or send more jobs from another terminal, e.g.")
        out(f"  {_taskrail_command()} {CALL_EXAMPLE}")
        out("Ctrl-C stops the workers, the dashboard and the server this run started")
        while not stop():
            time.sleep(0.2)
    return ok
