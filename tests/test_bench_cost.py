"""``taskrail bench --cost`` as a real subprocess on the test server: the cost of one job in each mode, sane figures."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import redis

from scripts.bench.cost import JobCost, ProducerCost, format_cost
from tests.conftest import BIN, ROOT

ROW = re.compile(r"^\| (inline|threads|asyncio|fork) \| ([\d,]+) \| (.+) \|$")


def test_bench_cost_prints_the_cost_of_one_job_in_each_mode(env: dict[str, str], tmp_path: Path) -> None:
    conn = redis.Redis.from_url(env["REDIS_URL"])
    before = conn.config_get("slowlog-log-slower-than")
    proc = subprocess.run(
        [str(BIN / "taskrail"), "bench", "--cost", "--quick", "--enqueue-jobs", "300", "--out", str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        match = ROW.match(line)
        if match:
            cells = [float(c.replace(",", "")) for c in match[3].split(" | ")]
            rows[match[1]] = dict(zip(("worker", "server", "claim", "finish", "other", "commands", "reads",
                                       "ceiling", "rate"), cells, strict=True))  # fmt: skip
    assert set(rows) == {"inline", "threads", "asyncio", "fork"}, proc.stdout
    for mode, row in rows.items():
        assert row["worker"] > 0 and row["server"] > 0, (mode, row)
        assert row["claim"] > 0 and row["finish"] > 0, (mode, row)
        assert abs(row["claim"] + row["finish"] + row["other"] - row["server"]) < 0.5, (mode, row)
        # a job is claimed, started, settled: several commands inside the scripts, far fewer round trips
        assert row["commands"] >= 5 and 0 < row["reads"] < row["commands"], (mode, row)
        assert row["ceiling"] > 0 and row["rate"] > 0, (mode, row)
    assert rows["fork"]["worker"] > 5 * rows["inline"]["worker"], "a child process per job must cost more"
    producer = re.search(r"delay\(\) ([\d.]+) µs .* arguments ([\d.]+) µs", proc.stdout)
    assert producer and float(producer[1]) > 0 and float(producer[2]) > 0, proc.stdout
    assert conn.config_get("slowlog-log-slower-than") == before, "the server's slowlog setting is put back"


def test_the_ceiling_is_the_tighter_of_the_server_thread_and_the_cores() -> None:
    server_bound = JobCost("inline", 100, 10.0, 100.0, {}, 20.0, 0.1, 1.0)
    assert server_bound.ceiling(2) == 10_000  # one server thread at 100 µs a job
    cpu_bound = JobCost("inline", 100, 300.0, 100.0, {}, 20.0, 0.1, 1.0)
    assert cpu_bound.ceiling(2) == 5_000  # 2 cores shared by 400 µs a job
    text = format_cost([cpu_bound], ProducerCost(10, 30.0, 20.0), 2)
    assert "| inline | 100 | 300.0 | 100.0 |" in text and "taskrail's own 10.0 µs" in text
    below = format_cost([cpu_bound], ProducerCost(10, 20.0, 30.0), 2)
    assert "10.0 µs below it: delay() sends its command packed once per task" in below
