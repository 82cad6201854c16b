"""``taskrail periodic check [FILE]``: validate periodic schedules against the registered tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from config.settings import load_settings
from tasks.core.registry import import_task_modules
from workers.exitcodes import RET_CONFIG, RET_OK
from workers.periodic import check_periodic, check_schedules

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("periodic", help="validate periodic schedules")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser("check", help="check a periodic file against the tasks of TASKRAIL_IMPORTS")
    check.add_argument("file", nargs="?", type=Path, help="only this file; default: TASKRAIL_PERIODIC_FILE (or "
                       "config/periodic.yaml), the beat_schedule setting and the schedules added in code")  # fmt: skip
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Print one line per bad schedule (file, entry, fix); exit 2 if any, as a worker's leader would skip them."""
    settings = load_settings()
    import_task_modules(settings.imports)  # also runs their add_periodic_task calls
    path = args.file or f"{settings.periodic_file}, beat_schedule and code"
    entries, problems = check_periodic(args.file) if args.file else check_schedules(settings)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{path}: {len(problems)} bad schedule(s), skipped by the workers until fixed; {len(entries)} OK")
        return RET_CONFIG
    print(f"{path}: OK: {len(entries)} schedule(s)")
    return RET_OK
