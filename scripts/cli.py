"""The ``taskrail`` console command: parse arguments, load settings, call a package, exit with a named code."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from config.errors import ConfigError, TaskrailError
from workers.exitcodes import RET_CONFIG, RET_ERROR

__all__ = ["main"]

# Each module defines ``register(subparsers)``; its parsers set ``func(args) -> int``.
COMMAND_MODULES = (
    "scripts.cmd_server",
    "scripts.cmd_demo",
    "scripts.cmd_call",
    "scripts.cmd_dashboard",
    "scripts.cmd_failed",
    "scripts.cmd_events",
    "scripts.cmd_metrics",
    "scripts.cmd_bench",
    "scripts.cmd_chaos",
    "scripts.cmd_deploy",
    "scripts.cmd_supervise",
    "scripts.cmd_queues",
    "scripts.cmd_periodic",
    "scripts.cmd_move",
    "scripts.cmd_rqsuite",
    "scripts.cmd_multihost",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="taskrail", description="Celery-style tasks on RQ.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=(args.log_level or "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args))
    except TaskrailError as exc:
        print(f"taskrail: {exc}", file=sys.stderr)
        return RET_CONFIG if isinstance(exc, ConfigError) else RET_ERROR
    except KeyboardInterrupt:
        return RET_ERROR


if __name__ == "__main__":
    sys.exit(main())
