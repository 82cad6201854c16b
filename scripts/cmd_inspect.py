"""``taskrail inspect active|reserved|scheduled|registered|stats|ping [--worker NAME] [--json] [--timeout S]``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from config.connection import connect
from config.settings import load_settings
from workers.control import INSPECT
from workers.exitcodes import RET_ERROR, RET_OK
from workers.inspect import Answers, inspect_workers

__all__ = ["add_common", "print_answers", "register"]

# Per kind: the columns of its table, each read from an item by key ("" for the item itself).
COLUMNS: dict[str, list[str]] = {
    "active": ["id", "task", "queue", "running_s", "args", "kwargs"],
    "reserved": ["id", "task", "queue", "attempts", "args", "kwargs"],
    "scheduled": ["id", "task", "queue", "due_in_s"],
    "registered": ["name", "rate_limit"],
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "inspect", help="ask live workers what they run, hold, know (Celery's inspect)",
        description="Ask every live worker (or --worker NAME) through Redis; a worker silent past --timeout is "
                    "listed as not answering.",
    )  # fmt: skip
    parser.add_argument("what", choices=INSPECT, help="what to ask")
    add_common(parser)
    parser.set_defaults(func=run)


def add_common(parser: argparse.ArgumentParser) -> None:
    """--worker, --json and --timeout, shared with taskrail control."""
    parser.add_argument("--worker", default=None, metavar="NAME", help="ask only this worker (default: all live)")
    parser.add_argument("--json", action="store_true", help="print the answers as one JSON object")
    parser.add_argument("--timeout", type=float, default=1.0, metavar="S", help="wait at most S seconds (default 1)")


def run(args: argparse.Namespace) -> int:
    conn = connect(load_settings())
    return print_answers(inspect_workers(conn, args.what, args.worker, args.timeout), args.json, args.timeout)


def print_answers(found: Answers, as_json: bool, timeout_s: float) -> int:
    """Print the answers (a table per worker, or JSON); RET_ERROR when a worker refused or was silent."""
    if as_json:
        print(json.dumps(found.to_json(), default=str))
    elif not (found.answers or found.errors or found.not_answering):
        print("no live workers")
    else:
        for name in sorted(found.answers):
            print(f"-> {name}: {_summary(found.answers[name])}")
            rows = _rows(found.request, found.answers[name])
            if rows:
                print(_indent(rows))
        for name, error in sorted(found.errors.items()):
            print(f"-> {name}: ERROR {error}")
        if found.not_answering:
            print(f"not answering within {timeout_s:g}s: {', '.join(found.not_answering)}")
    failed = found.errors or found.not_answering or not found.answers
    return RET_ERROR if failed else RET_OK


def _summary(answer: Any) -> str:
    if isinstance(answer, list):
        return f"{len(answer)} item{'s' if len(answer) != 1 else ''}"
    if isinstance(answer, dict) and "command" in answer:
        return f"OK ({answer['command']})"
    return "OK" if isinstance(answer, dict) else str(answer)


def _rows(request: str, answer: Any) -> list[list[str]]:
    if isinstance(answer, dict) and request in ("stats", "rate_limit"):
        return [[key, _cell(value)] for key, value in answer.items()]
    if not isinstance(answer, list) or not answer:
        return []
    columns = COLUMNS.get(request, sorted(answer[0]))
    now = time.time()
    extra = {"running_s": lambda i: now - i.get("started_at", now), "due_in_s": lambda i: i.get("eta", now) - now}
    body = [[_cell(extra[c](item) if c in extra else item.get(c)) for c in columns] for item in answer]
    return [[c.upper() for c in columns], *body]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _indent(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "    " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
