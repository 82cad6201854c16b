"""``taskrail control rate_limit TASK RATE | revoke ID... [--terminate] | shutdown [--worker NAME]``."""

from __future__ import annotations

import argparse
import json

from config.connection import connect
from config.settings import load_settings
from scripts.cmd_inspect import add_common, print_answers
from tasks.core.client import Client
from workers.exitcodes import RET_OK
from workers.inspect import rate_limit, revoke, shutdown

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "control", help="change live workers: rate limits, revokes, shutdown (Celery's control)"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    limit = actions.add_parser(
        "rate_limit", help="set a task's rate limit in every live worker until it restarts",
        description="TASK starts at most RATE (like 10/s, 100/m, 5/10s; 0: no limit) from each worker's next claim; "
                    "a restarted worker goes back to the task's own rate_limit, as in Celery.",
    )  # fmt: skip
    limit.add_argument("task", help="a registered task name")
    limit.add_argument("rate", help="10/s, 100/m, 5/10s, 1000/h; 0 for no limit")
    add_common(limit)
    limit.set_defaults(func=run_rate_limit)
    stop = actions.add_parser("revoke", help="cancel waiting jobs; with --terminate also stop running ones")
    stop.add_argument("ids", nargs="+", metavar="ID", help="job ids")
    stop.add_argument("--terminate", action="store_true", help="also stop the jobs already running")
    stop.add_argument("--json", action="store_true", help="print the outcomes as one JSON object")
    stop.set_defaults(func=run_revoke)
    down = actions.add_parser("shutdown", help="stop live workers gracefully (running jobs finish)")
    add_common(down)
    down.set_defaults(func=run_shutdown)


def run_rate_limit(args: argparse.Namespace) -> int:
    conn = connect(load_settings())
    return print_answers(rate_limit(conn, args.task, args.rate, args.worker, args.timeout), args.json, args.timeout)


def run_shutdown(args: argparse.Namespace) -> int:
    conn = connect(load_settings())
    return print_answers(shutdown(conn, args.worker, args.timeout), args.json, args.timeout)


def run_revoke(args: argparse.Namespace) -> int:
    outcomes = revoke(Client(load_settings()), list(args.ids), args.terminate)
    if args.json:
        print(json.dumps(outcomes))
    else:
        width = max(len(job_id) for job_id in outcomes)
        for job_id, outcome in outcomes.items():
            print(f"{job_id.ljust(width)}  {outcome}")
    return RET_OK
