"""The ``taskrail`` console command: parse arguments, load settings, call a package, exit with a named code."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
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
    "scripts.cmd_deploy",
    "scripts.cmd_supervise",
    "scripts.cmd_queues",
    "scripts.cmd_periodic",
    "scripts.cmd_move",
    "scripts.cmd_inspect",
    "scripts.cmd_control",
)

# Development tools the runtime image leaves out (deploy/.dockerignore): command -> the package it needs.
DEV_COMMAND_MODULES = {
    "bench": ("scripts.cmd_bench", "scripts.bench"),
    "chaos": ("scripts.cmd_chaos", "scripts.chaos"),
    "rq-suite": ("scripts.cmd_rqsuite", "scripts.rqsuite"),
    "multihost": ("scripts.cmd_multihost", "scripts.multihost"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="taskrail", description="Celery-style tasks on RQ.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for command, (module_name, package) in DEV_COMMAND_MODULES.items():
        if importlib.util.find_spec(package) is None:
            _register_missing(subparsers, command)
        else:
            importlib.import_module(module_name).register(subparsers)
    return parser


def _register_missing(subparsers: argparse._SubParsersAction, command: str) -> None:
    """A development command this installation leaves out (the runtime image) says so when called."""

    def missing(_args: argparse.Namespace) -> int:
        raise ConfigError(
            f"`taskrail {command}` is not in this installation (the runtime image leaves the development tools out): "
            f"run it from a source checkout (make install, then .venv/bin/taskrail {command})"
        )

    parser = subparsers.add_parser(command, help="(not installed here)", add_help=False, prefix_chars="\x00")
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=missing)


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
