"""``taskrail demo`` (``make run``) in a real pseudo-terminal: the login link it prints lets a real Chromium in,
and Ctrl-C stops the workers, the dashboard and the embedded server that the run started, and nothing else."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.embedded import free_port, running_server
from tests.conftest import BIN, wait_for

KINDS = (("valkey-server", "server"), ("dashboard", "dashboard"), ("supervise", "supervisor"), ("worker", "worker"),
         ("demo", "demo"))  # fmt: skip


class Terminal:
    """A command whose controlling terminal is a pty we hold the other end of, like a shell's foreground job."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            args, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )  # fmt: skip
        os.close(slave)
        self.output = ""

    def expect(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """Read until ``pattern`` shows up in the output, or fail at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not (found := re.search(pattern, self.output)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                pytest.fail(f"no {pattern!r} from the terminal within {timeout_s}s; it showed:\n{self.output[-4000:]}")
        return found

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], min(timeout_s, 1.0))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            return False
        self.output += chunk.decode(errors="replace")
        return bool(chunk)

    def ctrl_c(self) -> None:
        os.write(self.master, b"\x03")  # the terminal turns it into SIGINT for its foreground process group

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self.master)


def started_by(data_dir: Path) -> dict[int, str]:
    """Every live process that runs with this test's data dir, by pid, with its kind (server, worker, ...).

    The server is known by its working directory: it overwrites its environment with its process title.
    """
    marker = f"TASKRAIL_DATA_DIR={data_dir}\0".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit():
                continue
            cwd = os.readlink(entry / "cwd")
            if marker not in (entry / "environ").read_bytes() and not cwd.startswith(str(data_dir)):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # it exited while we looked
            continue
        if state != "Z":
            found[int(entry.name)] = next((kind for word, kind in KINDS if word in cmdline), cmdline)
    return found


@pytest.fixture
def demo_env(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The test's environment without REDIS_URL, so the demo uses the embedded server; kills what it leaves."""
    own = {k: v for k, v in env.items() if k != "REDIS_URL"}
    yield own
    for pid in started_by(Path(own["TASKRAIL_DATA_DIR"])):
        os.kill(pid, signal.SIGKILL)


def test_demo_login_link_logs_chromium_in_and_ctrl_c_stops_what_it_started(demo_env: dict[str, str], page: Any) -> None:
    data = Path(demo_env["TASKRAIL_DATA_DIR"])
    server_file = Path(demo_env["TASKRAIL_SERVER_FILE"])  # this test's own (conftest's env fixture)
    base = f"http://127.0.0.1:{free_port()}"
    term = Terminal([str(BIN / "taskrail"), "demo", "--port", base.rsplit(":", 1)[1]], demo_env)
    try:
        link = term.expect(r"log in: (http://\S+)", 90).group(1)
        password = term.expect(r"password for this run: (\S+)", 10).group(1)
        command = term.expect(r"\n\s+(\S*taskrail call [^\r\n]+)", 150).group(1)
        kinds = {"server", "supervisor", "worker", "dashboard"}
        wait_for(lambda: kinds <= set(started_by(data).values()), 30, what=f"{kinds} to run")
        running = started_by(data)

        page.goto(link)
        page.wait_for_url(base + "/")
        page.wait_for_selector("#queues tbody tr[data-queue=email]")
        # Used once: the same link in a fresh browser session gets the login form and a reason.
        page.context.clear_cookies()
        page.goto(link)
        page.wait_for_selector("p.error")
        assert "used already" in page.inner_text("p.error") and "/login" in page.url
        assert "#once" not in page.url, "the secret is taken out of the address bar"

        # The command the demo suggests works as shown, against the demo's own server and workers.
        # (Copied as shown: from the directory the demo runs in, with the PATH it had.)
        sent = subprocess.run(shlex.split(command), env=demo_env, capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0 and "\nSUCCESS {" in sent.stdout, sent.stdout + sent.stderr

        term.ctrl_c()
        term.expect(r"stopped: the embedded server \(this run started it\)", 60)
        assert term.proc.wait(timeout=30) == 0, term.output[-3000:]
        wait_for(lambda: not started_by(data), 30, what=f"{running} to be gone")
        assert running_server(server_file) is None
        assert "stopped: supervisor and its workers, dashboard" in term.output, term.output[-2000:]
    finally:
        term.close()
    secret = link.split("#once=", 1)[1]
    for log in (data / "logs").glob("*.log"):
        text = log.read_text()
        assert secret not in text and password not in text, log


def test_demo_leaves_a_server_it_did_not_start_running(demo_env: dict[str, str]) -> None:
    taskrail = str(BIN / "taskrail")
    data = Path(demo_env["TASKRAIL_DATA_DIR"])
    server_file = Path(demo_env["TASKRAIL_SERVER_FILE"])  # this test's own (conftest's env fixture)
    subprocess.run([taskrail, "server", "start"], env=demo_env, check=True, capture_output=True, timeout=60)
    before = running_server(server_file)
    assert before is not None
    done = subprocess.run(
        [taskrail, "demo", "--once", "--port", str(free_port())], env=demo_env, capture_output=True, text=True,
        timeout=200,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left running: the embedded server" in done.stdout
    assert "`taskrail server stop` stops it" in done.stdout
    after = running_server(server_file)
    assert after is not None and after.pid == before.pid
    assert set(started_by(data).values()) == {"server"}, "the workers and the dashboard are gone"
    subprocess.run([taskrail, "server", "stop"], env=demo_env, check=True, capture_output=True, timeout=60)
