"""``taskrail bench``: taskrail against plain RQ (and peers, when installed) on the same server and workloads."""

from config.errors import BenchError
from scripts.bench.report import format_table, rank_block, ranks, write_chart, write_json, write_markdown
from scripts.bench.results import METRICS, Results
from scripts.bench.run import run_bench
from scripts.bench.systems import SYSTEMS, BenchOptions, System

__all__ = [
    "METRICS",
    "SYSTEMS",
    "BenchError",
    "BenchOptions",
    "Results",
    "System",
    "format_table",
    "rank_block",
    "ranks",
    "run_bench",
    "write_chart",
    "write_json",
    "write_markdown",
]
