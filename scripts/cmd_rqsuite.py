"""``taskrail rq-suite [--files a,b] [--timeout S] [--out DIR]``: RQ's own tests, RQ's worker against workers.Worker."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import signal
import sys
from pathlib import Path

from config.settings import load_settings
from scripts.args import positive_int
from scripts.rqsuite import (
    DEFAULT_FILES,
    SuiteOptions,
    compare,
    fetch_suite,
    format_table,
    installed_rq_version,
    junit_path,
    read_junit,
    run_suite,
    write_report,
)
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["register"]


def _files(text: str) -> tuple[str, ...]:
    names = tuple(name.strip().removesuffix(".py") for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one file, e.g. test_worker,test_job")
    return names


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rq-suite",
        help="run RQ's own test suite with RQ's worker and with workers.Worker, and compare",
        description="Downloads the sdist of the installed RQ (pip, cached under DIR/cache), runs the chosen test "
        "files twice, each against a private server, under JSON: with RQ's worker and with rq.Worker and "
        "rq.SimpleWorker replaced by workers.Worker. Prints a table; writes results.json and results.md to DIR.",
    )
    parser.add_argument("--files", type=_files, default=DEFAULT_FILES,
                        help=f"comma-separated test files of RQ's suite (default: {','.join(DEFAULT_FILES)})")  # fmt: skip
    parser.add_argument("--timeout", type=positive_int, default=60, help="seconds one test may take (60)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (TASKRAIL_DATA_DIR/rq-suite)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(RET_ERROR))  # stops the private servers on the way out
    out_dir = (args.out or load_settings().data_dir / "rq-suite").resolve()
    version = installed_rq_version()
    suite_dir = fetch_suite(out_dir / "cache", version)
    names = run_suite(SuiteOptions(suite_dir, out_dir, files=args.files, test_timeout_s=args.timeout))
    runs = {
        n: (read_junit(junit_path(out_dir, "rq", n)), read_junit(junit_path(out_dir, "taskrail", n))) for n in names
    }
    comparison = compare(runs)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    heading = f"# RQ {version}'s test suite under JSON: RQ's worker vs workers.Worker ({when}, Python {platform.python_version()})"
    print(format_table(comparison))
    print("\npassing with RQ's worker, not with workers.Worker:")
    for test in comparison.only_rq():
        print(f"  {test}")
    json_path, md_path = write_report(comparison, out_dir, heading, {"rq_version": version, "date": when})
    print(f"\nwrote {json_path} and {md_path}")
    return RET_OK
