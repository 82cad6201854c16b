"""``taskrail bench --long-run N`` at a small N: the mix runs through 2 real workers and leaves no key behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from scripts.bench.longrun import CYCLE, FIXED
from tests.conftest import BIN, ROOT
from workers.exitcodes import RET_OK

JOBS = 2400


def test_long_run_leaves_no_key_behind_once_results_expire(env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in env.items() if k != "REDIS_URL"}  # its own private server
    out = tmp_path / "longrun"
    done = subprocess.run([str(BIN / "taskrail"), "bench", "--long-run", str(JOBS), "--out", str(out)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == RET_OK, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "results-longrun.json").read_text())
    assert results["jobs"] == JOBS and JOBS % CYCLE == 0
    assert results["left_behind"] == []  # every key is one of the fixed set, named
    assert set(results["fixed_keys"]) == {description for _, description in FIXED}
    assert results["fixed_keys"]["one statistics hash per task"] == 5  # one per task of the mix: all ran
    done_column = [row[1] for row in results["samples"]]
    assert done_column == sorted(done_column) and done_column[-1] == JOBS and len(done_column) >= 5
    assert all(len(row) == 5 and row[2] > 0 and min(row[3:]) > 0 for row in results["samples"])  # server, 2 workers
    assert set(results["drift_pct"]) == {"server used_memory", "worker 1 RSS", "worker 2 RSS"}
    assert "left behind: none" in (out / "results-longrun.md").read_text()
    assert (out / "longrun.png").stat().st_size > 10_000
