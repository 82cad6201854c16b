"""``taskrail bench --scale --quick``: every operation measured at each backlog, memory per job, table and chart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from scripts.bench.peers import installed
from scripts.bench.scale import OPERATIONS
from tests.conftest import BIN, ROOT
from workers.exitcodes import RET_OK


def test_bench_scale_quick_writes_every_operation_and_memory(env: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in env.items() if k != "REDIS_URL"}  # its own private server
    out = tmp_path / "scale"
    done = subprocess.run([str(BIN / "taskrail"), "bench", "--scale", "--quick", "--out", str(out)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == RET_OK, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "results-scale.json").read_text())
    for op in OPERATIONS:
        sizes = results["rows"][op]["taskrail"]
        assert sizes and all(row["median_us"] > 0 and row["slowest_us"] >= row["median_us"] for row in sizes.values())
        # the slowest command of every taskrail operation is one of its scripts, named, and counted against 1 ms
        assert all(row["slowest"].endswith(".lua") and 0 <= row["over_1ms"] <= 50 for row in sizes.values()), sizes
    assert set(results["rows"]["enqueue"]["taskrail"]) == {"1000", "10000"}  # both backlog sizes
    assert set(results["rows"]["enqueue"]) == {"taskrail", "rq"}  # plain RQ beside it where it has the operation
    assert all(per_job > 0 for system in ("taskrail", "rq") for per_job in results["memory"][system].values())
    if installed("bullmq"):  # make bench-peers: BullMQ's memory per waiting job in the same run
        assert set(results["memory"]["bullmq"]) == {"1000", "10000"}
    table = (out / "results-scale.md").read_text()
    assert all(label in table for label, _ in OPERATIONS.values()) and "server memory per waiting job" in table
    assert (out / "scale.png").stat().st_size > 10_000
