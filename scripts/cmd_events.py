"""``taskrail events [QUEUE...] [--follow]``: print or tail the lifecycle events of jobs."""

from __future__ import annotations

import argparse
import json
import sys
import time

from config.settings import load_settings
from tasks.core import validate
from tasks.core.client import Client
from tasks.core.events import Event, follow_events, read_events
from workers.exitcodes import RET_OK

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("events", help="print or follow job lifecycle events")
    parser.add_argument("queues", nargs="*", metavar="QUEUE", help="queues to read (default: all)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events as they happen")
    parser.add_argument("--from-start", action="store_true", help="with --follow: print the stored events first")
    parser.add_argument("--last", type=int, default=100, help="without --follow: the newest N events (default 100)")
    parser.add_argument("--job", default=None, help="only the events of this job id")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for queue in args.queues:
        validate.queue_name(queue, "taskrail events")
    client = Client(load_settings())
    queues = args.queues or None
    if args.follow:
        events = follow_events(queues, client=client, from_start=args.from_start)
        print(f"following events of {', '.join(queues) if queues else 'every queue'} (Ctrl-C stops)",
              file=sys.stderr, flush=True)  # fmt: skip
    else:
        events = iter(read_events(queues, client=client, last=None if args.job else args.last))
    try:
        for event in events:
            if args.job is None or event.job_id == args.job:
                print(_json(event) if args.json else _line(event), flush=True)
    except KeyboardInterrupt:
        pass
    return RET_OK


def _line(event: Event) -> str:
    moment = time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at * 1000) % 1000:03d}"
    details = []
    if event.duration_ms is not None and event.kind in ("completed", "failed", "retried"):
        details.append(f"{event.duration_ms:.1f}ms")
    if event.error:
        details.append(event.error)
    if event.percent is not None:
        details.append(f"{event.percent:.0f}%")
    if event.stalls is not None:
        details.append(f"stalls={event.stalls}")
    details += [f"{k}={v}" for k, v in event.extra]
    worker = f" on {event.worker}" if event.worker else ""
    return f"{moment}  {event.queue:<12} {event.kind:<10} {event.job_id}  {event.task}{worker}  {' '.join(details)}".rstrip()


def _json(event: Event) -> str:
    data = {name: getattr(event, name) for name in event.__dataclass_fields__}
    data["extra"] = dict(event.extra)
    data["at"] = event.at
    return json.dumps(data)
