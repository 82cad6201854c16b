"""One bench drain of one system, through ``taskrail bench``'s own harness, with the CPU each process used: the
threads mode's table in docs/execution-modes.md.

    .venv/bin/python docs/bench_drain.py taskrail_threads --kind io --jobs 8000 --runs 2

Run it from a checkout (the checkout's code is measured: its workers get ``PYTHONPATH=<checkout>``); run two
checkouts in turns to compare them. Prints jobs/s, the share of the slot ceiling for the I/O drain (two processes
x ``concurrency`` slots / 20 ms), and the cores each worker, the server and this process used during the drain.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.bench import workloads  # noqa: E402
from scripts.bench.harness import Harness, open_harness  # noqa: E402
from scripts.bench.systems import SYSTEMS, WORKERS  # noqa: E402
from tests.bench_jobs import IO_SECONDS  # noqa: E402

RET_OK = 0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class Metered:
    """Wraps the harness's start and finish of a drain to read each process's CPU between them."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.server = int(harness.conn.info("server")["process_id"])
        self.start_workers, self.wait_done = harness.start_workers, harness.wait_done
        self.before: dict[int, float] = {}
        self.used: dict[str, float] = {}
        self.t0 = 0.0
        harness.start_workers = self._start  # type: ignore[method-assign]
        harness.wait_done = self._done  # type: ignore[method-assign]

    def _start(self, *args: Any, **kwargs: Any) -> list[int]:
        pids = self.start_workers(*args, **kwargs)
        self.before = {pid: cpu_s(pid) for pid in [*pids, self.server, os.getpid()]}
        self.t0 = time.monotonic()
        return pids

    def _done(self, *args: Any, **kwargs: Any) -> float:
        end = self.wait_done(*args, **kwargs)
        elapsed = time.monotonic() - self.t0
        names = {self.server: "server", os.getpid(): "bench"}
        self.used = {names.get(pid, f"worker {pid}"): round((cpu_s(pid) - cpu) / elapsed, 2)
                     for pid, cpu in self.before.items()}  # fmt: skip
        return end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("system", choices=[s.key for s in SYSTEMS if not s.peer])
    parser.add_argument("--kind", choices=["noop", "io"], default="io")
    parser.add_argument("--jobs", type=int, default=8000)
    parser.add_argument("--runs", type=int, default=2)
    options = parser.parse_args()
    system = next(s for s in SYSTEMS if s.key == options.system)
    ceiling = WORKERS * system.concurrency / IO_SECONDS
    with open_harness(None, Path("/tmp/bench-drain")) as harness:
        meter = Metered(harness)
        for run in range(options.runs):
            rate = workloads.drain(harness, system, options.kind, options.jobs, f"drain-{run}", lambda done: None)
            share = f" ({rate / ceiling:.1%} of the slot ceiling)" if options.kind == "io" else ""
            print(f"{system.key} {options.kind} drain of {options.jobs:,}: {rate:,.0f} jobs/s{share}; cores used: "
                  + ", ".join(f"{name} {used}" for name, used in meter.used.items()), flush=True)  # fmt: skip
    return RET_OK


if __name__ == "__main__":
    sys.exit(main())
