"""``taskrail demo --once``: what ``make run`` does, ending when every demo job has finished."""

from __future__ import annotations

import email
import re
import subprocess
from pathlib import Path

from config.embedded import free_port
from tests.conftest import BIN


def test_demo_once_processes_every_demo_job(env: dict[str, str], tmp_path: Path) -> None:
    data = Path(env["TASKRAIL_DATA_DIR"])
    done = subprocess.run(
        [str(BIN / "taskrail"), "demo", "--once", "--timeout", "120", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=200,
    )  # fmt: skip
    logs = "".join(f"\n--- {log.name}\n{log.read_text()[-3000:]}" for log in (data / "logs").glob("*.log"))
    assert done.returncode == 0, done.stdout + done.stderr + logs
    assert "all demo jobs finished as expected" in done.stdout
    assert "newsletter summary: SUCCESS sent=5, failed=1" in done.stdout
    outbox = sorted((data / "outbox").glob("*.eml"))
    assert len(outbox) == 3 + 5  # three welcome emails and five newsletter copies
    message = email.message_from_bytes(outbox[0].read_bytes())
    assert message["To"] and message["Subject"]
    assert len(list((data / "reports").glob("*.html"))) == 2
    # The dashboard's password for the run is shown on the terminal once, never in a log; logs are the user's only.
    password = re.search(r"password for this run: (\S+)", done.stdout).group(1)  # type: ignore[union-attr]
    for log in (data / "logs").glob("*.log"):
        assert log.stat().st_mode & 0o777 == 0o600, log
        assert password not in log.read_text(), log
