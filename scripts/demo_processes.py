"""The processes behind ``taskrail demo``: workers (or the supervisor) and the dashboard, started and stopped."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from config.embedded import stop_server
from config.settings import Settings, writable_dir
from config.urls import redact_url

__all__ = ["Processes", "start_processes", "stop_all"]

BIN = Path(sys.executable).parent
DASHBOARD_SECRETS = ("TASKRAIL_DASHBOARD_PASSWORD", "TASKRAIL_DASHBOARD_TOKEN")
LOG_MODE = 0o600  # logs may hold secrets (a URL in a traceback): for the user only, whatever the umask


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
        procs.start("dashboard", [str(BIN / "rq-dashboard"), "-b", "127.0.0.1", "-p", str(port), "-j", "-u", url])
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


def stop_all(settings: Settings, procs: Processes, url: str, started_server: bool, out: Callable[[str], None]) -> None:
    """Stop what this run started and say what was stopped and what was left running."""
    names = ", ".join("supervisor and its workers" if name == "supervisor" else name for name, _ in procs.children)
    if names:
        out(f"stopping {names} gracefully...")
        procs.stop(timeout_s=settings.shutdown_timeout_s + 5)
        out(f"stopped: {names}")
    if started_server:
        stop_server(settings.server_file)
        out("stopped: the embedded server (this run started it)")
    elif settings.redis_url is None:
        out(f"left running: the embedded server at {redact_url(url)}, which was running before; "
            "`taskrail server stop` stops it")  # fmt: skip
    else:
        out(f"left alone: the server at REDIS_URL {redact_url(url)}")
