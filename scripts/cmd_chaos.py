"""``taskrail chaos [--quick] [--jobs N] [--write-docs]``: jobs under faults; exits non-zero when one was lost."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from config.settings import load_settings
from scripts.args import positive_int
from scripts.chaos import ChaosOptions, format_details, format_table, run_chaos, write_docs, write_findings
from workers.exitcodes import RET_CHAOS_LOST, RET_OK

__all__ = ["register"]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chaos",
        help="run jobs through 3 supervised workers while killing, stopping and cutting them; count what was lost",
        description="Starts a private append-only server (or uses REDIS_URL, whose database must be empty), a "
        "proxy that drops replies between the workers and the server, and `taskrail supervise` with 3 workers; "
        "sends plain, retried, prioritized, delayed and chord jobs; kills a worker every 3 s, stops one past its "
        "heartbeat every 20 s, restarts the server twice; then checks every job. Exits 78 when a job was lost "
        "or completed twice.",
    )
    parser.add_argument("--quick", action="store_true", help="about 3,000 jobs, a minute or two")
    parser.add_argument("--jobs", type=positive_int, help="jobs to send (50000; quick 3000)")
    parser.add_argument("--seed", type=int, help="seed of the job mix and the faults (13)")
    parser.add_argument("--out", type=Path, help="where findings.json and the workers' log go (chaos-output)")
    parser.add_argument("--write-docs", action="store_true", help=f"put the table into {DOCS.name}'s chaos section")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    options = ChaosOptions.build(
        quick=args.quick, jobs=args.jobs, seed=args.seed, out_dir=args.out, redis_url=settings.redis_url,
        command="taskrail " + shlex.join(sys.argv[1:]),
    )  # fmt: skip
    signal.signal(signal.SIGTERM, _stop)  # unwinds like Ctrl-C: workers, proxy and server are stopped too
    result = run_chaos(options)
    print()
    print(format_table(result))
    print(format_details(result))
    write_findings(result, options.out_dir / "findings.json")
    print(
        f"wrote {options.out_dir / 'findings.json'}; the workers' log is {options.out_dir / 'logs' / 'supervisor.log'}"
    )
    if args.write_docs:
        write_docs(result, DOCS)
        print(f"wrote the table into {DOCS}")
    if not result.findings.ok:
        print("taskrail chaos: jobs were lost or completed more than once (see above)", file=sys.stderr)
        return RET_CHAOS_LOST
    return RET_OK


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
