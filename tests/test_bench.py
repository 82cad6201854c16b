"""``taskrail bench`` as a real subprocess against the test server: the harness works (figures are not judged)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import redis

from config.errors import BenchError
from scripts.bench.harness import Harness
from scripts.bench.report import format_table
from scripts.bench.results import Results
from scripts.bench.systems import SYSTEMS
from scripts.bench.workloads import check_exactly_once
from tests.conftest import BIN, ROOT
from workers.exitcodes import RET_CONFIG

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVERY_SYSTEM = ("enqueue_one", "enqueue_bulk", "drain_noop", "drain_io", "latency_p50", "latency_p95", "latency_p99")
MEMORY = ("memory_start_mb", "memory_end_mb")


def run_bench(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "taskrail"), "bench", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def test_quick_bench_measures_every_workload_on_every_system(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bench"
    small = ["--jobs", "60", "--enqueue-jobs", "30", "--latency-jobs", "20", "--memory-jobs", "300"]
    proc = run_bench(env, "--quick", *small, "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    results = json.loads((out / "results.json").read_text())
    assert set(results["systems"]) == {"rq", "rq_simple", "taskrail"}
    for metric in EVERY_SYSTEM:
        for system in results["systems"]:
            figure = results["figures"][metric][system]
            assert figure["median"] > 0, (metric, system, figure)
            assert figure["jobs"] > 0
    for metric in MEMORY:
        assert results["figures"][metric]["taskrail"]["median"] > 0
    assert results["figures"]["memory_drift_pct"]["taskrail"]["median"] >= 0
    assert results["memory_samples"]["taskrail"], "no memory samples were taken"
    assert results["meta"]["cpus"] > 0 and results["meta"]["versions"]["rq"].startswith("3.")
    assert (out / "benchmarks.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "| no-op drain (jobs/s) |" in (out / "results.md").read_text()
    assert "no-op drain (jobs/s)" in proc.stdout and "taskrail" in proc.stdout


def test_bench_refuses_a_redis_url_whose_database_holds_data(env: dict[str, str], tmp_path: Path) -> None:
    redis.Redis.from_url(env["REDIS_URL"]).set("precious", "1")
    proc = run_bench(env, "--quick", "--out", str(tmp_path / "bench"))
    assert proc.returncode == RET_CONFIG
    assert "holds 1 keys" in proc.stderr and "empty database" in proc.stderr
    assert redis.Redis.from_url(env["REDIS_URL"]).get("precious") == b"1"


def test_table_shows_how_many_times_better_than_rq_for_rates_and_latencies() -> None:
    results = Results(meta={}, systems={"rq": "RQ", "taskrail": "taskrail"})
    results.add("drain_noop", "rq", [50.0, 60.0, 70.0], 100)
    results.add("drain_noop", "taskrail", [3000.0], 100)
    results.add("latency_p50", "rq", [200.0], 100)
    results.add("latency_p50", "taskrail", [2.0], 100)
    results.add("memory_drift_pct", "taskrail", [1.5], 100)
    lines = {line.split("  ")[0]: line for line in format_table(results).splitlines()}
    assert "60.0 (1.0x)" in lines["no-op drain (jobs/s)"] and "3,000 (50.0x)" in lines["no-op drain (jobs/s)"]
    assert "2.00 (100.0x)" in lines["latency p50 (ms)"]  # 100 times lower
    assert lines["worker memory drift (%)"].split()[-2:] == ["-", "1.50"]


def test_the_exactly_once_check_fires_on_a_double_completion(redis_url: str, conn: redis.Redis, tmp_path: Path) -> None:

    harness = Harness(redis_url, tmp_path, tmp_path)
    taskrail = next(s for s in SYSTEMS if s.key == "taskrail")
    conn.hset("taskrail:taskstats:bench.noop", "completed", 10)
    check_exactly_once(harness, taskrail, "noop", 10)  # as many completions as jobs: silent
    conn.hset("taskrail:taskstats:bench.noop", "completed", 11)
    with pytest.raises(BenchError, match="10 noop jobs enqueued, 11 completions counted"):
        check_exactly_once(harness, taskrail, "noop", 10)


def test_a_drain_whose_workers_all_died_stops_with_their_last_words(redis_url: str, tmp_path: Path) -> None:

    harness = Harness(redis_url, tmp_path, tmp_path)
    harness.start([["sh", "-c", "echo dying words; exit 3"]], "dead", {}, lambda: True, "nothing")
    with pytest.raises(BenchError, match=r"every worker exited \(0 of 5 jobs done\) with code 3(.|\n)*dying words"):
        harness.wait_done(5)
