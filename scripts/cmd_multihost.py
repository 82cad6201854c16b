"""``taskrail multihost [-k EXPR] [--out DIR]``: the multihost scenarios (tests/multihost), as root, with a table."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from scripts.multihost.netns import unavailable
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["format_rows", "register"]

ROOT = Path(__file__).resolve().parents[1]
REPORT_ENV = "TASKRAIL_MULTIHOST_REPORT"  # tests/multihost/conftest.py appends one JSON row per scenario here
COLUMNS = (("scenario", "scenario"), ("jobs", "jobs"), ("lost", "lost"), ("double_completed", "double-completed"),
           ("recovery_s", "recovery (s)"), ("throughput", "throughput (jobs/s)"))  # fmt: skip


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "multihost",
        help="workers, producers and the server as separate hosts (network namespaces, as root): 5 scenarios",
        description="Runs tests/multihost from a source checkout: each scenario creates network namespaces joined "
        "by a userspace switch with delay, jitter and loss, starts the server, workers and producers in them, cuts "
        "links, and checks that no job is lost or completed twice; then prints a table. Needs root.",
    )
    parser.add_argument("-k", dest="select", help="only scenarios whose test name matches (pytest's -k)")
    parser.add_argument("--out", type=Path, default=Path("multihost-output"), help="where results.json goes")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    reason = unavailable()
    if reason:
        raise ConfigError(reason)
    if not (ROOT / "tests" / "multihost" / "conftest.py").exists():
        raise ConfigError("taskrail multihost runs from a source checkout; tests/multihost is missing")
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.out / "rows.jsonl"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "tests/multihost", "-m", "multihost", "-q", "-p", "no:cacheprovider",
               "--timeout=900", *(["-k", args.select] if args.select else [])]  # fmt: skip
    code = subprocess.call(command, cwd=ROOT, env={**os.environ, REPORT_ENV: str(report.resolve())})
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(format_rows(rows))
    print(f"\nwrote {args.out / 'results.json'}")
    if code:
        print(f"taskrail multihost: a scenario failed (pytest exit {code}; see above)", file=sys.stderr)
        return RET_ERROR
    return RET_OK


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The scenarios as a Markdown table, in scenario order."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in sorted(rows, key=lambda r: str(r["scenario"])):
        cells = ["-" if row.get(key) is None else f"{row[key]:,}" if isinstance(row[key], int) else str(row[key])
                 for key, _ in COLUMNS]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
