"""``taskrail demo [--once]``: what ``make run`` shows."""

from __future__ import annotations

import argparse

from config.settings import check_port, load_settings
from scripts.demo import DASHBOARD_PORT, run_demo
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="start everything and process demo email, report and fan-out jobs")
    parser.add_argument("--once", action="store_true", help="exit 0 when every demo job has finished")
    parser.add_argument("--timeout", type=float, default=120.0, help="with --once: give up after this many seconds")
    parser.add_argument("--port", type=int, default=DASHBOARD_PORT, help="dashboard port on 127.0.0.1")
    parser.set_defaults(func=run, subcommands=subparsers.choices)


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    ok = run_demo(
        load_settings(), once=args.once, timeout_s=args.timeout, commands=set(args.subcommands), port=args.port
    )
    return RET_OK if ok else RET_ERROR
