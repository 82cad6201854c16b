"""``taskrail move SOURCE TARGET [--limit N]``: move waiting jobs from one queue to another.

For the runbooks in docs/operations.md: drain a queue whose workers are gone or broken into one that
is served, or undo a misrouted release. Jobs move from the head of SOURCE (the next to run first)
into TARGET in its priority order, keeping how long they have waited; running, delayed and failed
jobs stay where they are. Each batch is one atomic server-side step (tasks/core/lua/move.lua), so
producers and workers carry on meanwhile.
"""

from __future__ import annotations

import argparse

import redis

from config.errors import ConfigError
from config.settings import load_settings
from scripts.args import positive_int
from tasks.core import validate
from tasks.core.client import Client
from tasks.core.queues import waiting
from tasks.core.scripting import load_command
from workers.exitcodes import RET_OK

__all__ = ["move_jobs", "register"]

BATCH = 500  # jobs per atomic step: bounds how long one step holds the server


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    text = "move waiting jobs from queue SOURCE to queue TARGET (running, delayed and failed jobs stay)"
    parser = subparsers.add_parser("move", help=text, description=text)
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("target", metavar="TARGET")
    parser.add_argument("--limit", type=positive_int, default=None, help="move at most N jobs (default: all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for queue in (args.source, args.target):
        validate.queue_name(queue, "taskrail move")
    if args.source == args.target:
        raise ConfigError(f"taskrail move: SOURCE and TARGET are both {args.source!r}; name two different queues")
    settings = load_settings()
    client = Client(settings)
    moved = move_jobs(client.redis, args.source, args.target, args.limit, settings.events_maxlen)
    left = waiting(client.redis, [args.source])[args.source]
    print(f"moved {moved} job{'s' if moved != 1 else ''} from {args.source} to {args.target}; "
          f"{left} still waiting in {args.source}")  # fmt: skip
    return RET_OK


def move_jobs(conn: redis.Redis, source: str, target: str, limit: int | None = None, maxlen: int = 10_000) -> int:
    """Move up to ``limit`` (default: all) waiting jobs from ``source`` to ``target``; how many moved."""
    script = load_command("move")
    moved = 0
    while limit is None or moved < limit:
        batch = BATCH if limit is None else min(BATCH, limit - moved)
        step = int(script(conn, [source, target], [batch, maxlen]))
        moved += step
        if step < batch and not waiting(conn, [source])[source]:
            break
    return moved
