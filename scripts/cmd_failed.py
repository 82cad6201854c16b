"""``taskrail failed [QUEUE]``, ``taskrail failed requeue ID|--all``, ``taskrail failed purge [QUEUE]``: dead letters."""

from __future__ import annotations

import argparse
import json
import time

from config.settings import load_settings
from tasks.core.client import Client
from tasks.core.deadletters import DeadLetter, DeadLetters
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["register"]

ACTIONS = ("requeue", "purge")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "failed",
        help="list, requeue or purge failed jobs (dead letters)",
        description="taskrail failed [QUEUE] | failed requeue ID...|--all [--queue Q] | failed purge [QUEUE]",
    )
    parser.add_argument("words", nargs="*", metavar="ARG", help="QUEUE, or requeue ID..., or purge [QUEUE]")
    parser.add_argument("--all", action="store_true", help="with requeue: every failed job (of --queue, if given)")
    parser.add_argument("--queue", default=None, help="only this queue (for listing, requeue --all and purge)")
    parser.add_argument("--limit", type=int, default=50, help="list at most this many jobs (default 50)")
    parser.add_argument("--traceback", action="store_true", help="print each job's traceback")
    parser.add_argument("--json", action="store_true", help="one JSON object per job")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    letters = DeadLetters(Client(load_settings()))
    words = list(args.words)
    if words and words[0] == "requeue":
        return _requeue(letters, words[1:], args)
    if words and words[0] == "purge":
        if len(words) > 2:
            print("usage: taskrail failed purge [QUEUE]")
            return RET_ERROR
        purged = letters.purge(words[1] if len(words) == 2 else args.queue)
        print(f"purged {purged} failed job{'s' if purged != 1 else ''}")
        return RET_OK
    if len(words) > 1:
        print(f"usage: taskrail failed [QUEUE]; got {' '.join(words)!r} (actions: {', '.join(ACTIONS)})")
        return RET_ERROR
    return _list(letters, words[0] if words else args.queue, args)


def _requeue(letters: DeadLetters, ids: list[str], args: argparse.Namespace) -> int:
    if args.all == bool(ids):
        print("usage: taskrail failed requeue ID... | taskrail failed requeue --all [--queue QUEUE]")
        return RET_ERROR
    if args.all:
        moved = letters.requeue_all(args.queue)
        print(f"requeued {moved} failed job{'s' if moved != 1 else ''}")
        return RET_OK
    missing = [job_id for job_id in ids if not letters.requeue(job_id)]
    print(f"requeued {len(ids) - len(missing)} failed job{'s' if len(ids) - len(missing) != 1 else ''}")
    for job_id in missing:
        print(f"not a failed job (unknown, expired or already requeued): {job_id}")
    return RET_ERROR if missing else RET_OK


def _list(letters: DeadLetters, queue: str | None, args: argparse.Namespace) -> int:
    found = letters.jobs(queue, limit=args.limit)
    if args.json:
        for letter in found:
            print(json.dumps(_as_dict(letter)))
        return RET_OK
    if not found:
        print(f"no failed jobs{f' in queue {queue!r}' if queue else ''}")
        return RET_OK
    total = letters.count(queue)
    print(f"{total} failed job{'s' if total != 1 else ''}{f' in queue {queue!r}' if queue else ''}"
          f"{f' (showing the newest {len(found)})' if total > len(found) else ''}:")  # fmt: skip
    for letter in found:
        call = _call(letter)
        days = max(letter.expires_at - time.time(), 0) / 86400
        print(f"{letter.id}  {letter.queue}  {letter.failed_at[:19]}  attempts={letter.attempts}  "
              f"kept {days:.1f} more days")  # fmt: skip
        print(f"    {call}")
        print(f"    {letter.exc_type}: {letter.message}")
        if args.traceback and letter.traceback:
            print("    " + letter.traceback.rstrip().replace("\n", "\n    "))
    return RET_OK


def _call(letter: DeadLetter) -> str:
    parts = [repr(a) for a in letter.args] + [f"{k}={v!r}" for k, v in letter.kwargs.items()]
    if letter.data_error:
        parts = [f"<{letter.data_error}>"]
    text = f"{letter.task}({', '.join(parts)})"
    return text if len(text) <= 200 else text[:199] + "…"


def _as_dict(letter: DeadLetter) -> dict[str, object]:
    return {name: getattr(letter, name) for name in letter.__dataclass_fields__}
