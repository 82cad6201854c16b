"""Celery, Dramatiq and BullMQ on the same workloads, when ``make bench-peers`` has installed them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.bench.systems import BenchOptions

if TYPE_CHECKING:
    from workers.bench.run import Results

__all__ = ["run_peers"]


def run_peers(options: BenchOptions, results: Results) -> None:
    results.notes.append("peers: not implemented yet")
