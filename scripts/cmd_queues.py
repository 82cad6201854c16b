"""``taskrail pause QUEUE...`` / ``taskrail resume QUEUE...``: stop and restart taking jobs from queues."""

from __future__ import annotations

import argparse

from config.settings import load_settings
from tasks.core import queues, validate
from tasks.core.client import Client
from tasks.core.queues import pause, paused_queues, resume
from workers.exitcodes import RET_OK

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, func, text in (
        ("pause", run_pause, "stop workers taking jobs from QUEUE (enqueues still succeed; running jobs finish)"),
        ("resume", run_resume, "let workers take jobs from a paused QUEUE again"),
    ):
        parser = subparsers.add_parser(name, help=text, description=text)
        parser.add_argument("queues", nargs="+", metavar="QUEUE")
        parser.set_defaults(func=func)


def run_pause(args: argparse.Namespace) -> int:
    _check(args.queues, "taskrail pause")
    client = Client(load_settings())
    for queue in args.queues:
        changed = pause(queue, client)
        waiting = queues.waiting(client.redis, [queue])[queue]
        state = "paused" if changed else "already paused"
        print(f"{queue}: {state}, {waiting} jobs waiting; `taskrail resume {queue}` to start it again")
    return RET_OK


def run_resume(args: argparse.Namespace) -> int:
    _check(args.queues, "taskrail resume")
    client = Client(load_settings())
    for queue in args.queues:
        changed = resume(queue, client)
        print(f"{queue}: {'resumed' if changed else 'was not paused'}")
    still = sorted(paused_queues(client))
    if still:
        print(f"still paused: {', '.join(still)}")
    return RET_OK


def _check(queues: list[str], where: str) -> None:
    """Refuse every queue before changing any, so a typo in the third name leaves the first two alone."""
    for queue in queues:
        validate.queue_name(queue, where)
