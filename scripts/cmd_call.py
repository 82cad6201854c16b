"""``taskrail call TASK [ARGS...] [--kwargs JSON] [--queue Q] [--countdown S] [--wait]``: enqueue from the shell.

Like ``celery call`` and ``rq enqueue``. Each argument is read as JSON when it parses (``42``, ``true``,
``'[1, 2]'``) and as a string otherwise. The call goes through the same checks as the HTTP API's
``POST /api/tasks/<name>`` (``Task.apply_async``: the signature, ``tasks/core/validate.py`` for the queue
and countdown, the payload limit), all before anything is written.
"""

from __future__ import annotations

import argparse
import difflib
import json
from typing import Any

from config.errors import ConfigError, ResultTimeout, TaskFailed, TaskNotRegistered, TaskRevoked
from config.settings import load_settings
from tasks.core.client import Client
from tasks.core.registry import all_tasks, import_task_modules, lookup
from tasks.core.result import AsyncResult
from tasks.core.task import Task
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["parse_argument", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "call",
        help="enqueue a registered task from the shell and print its job id",
        description="Enqueue TASK with ARGS (each read as JSON when it parses, else as a string).",
        epilog='example: taskrail call tasks.emails.send_email dave@example.com Hello --kwargs \'{"text": "hi"}\' '
        "--wait",
    )
    parser.add_argument("task", metavar="TASK", help="a registered task's name, e.g. tasks.emails.send_email")
    parser.add_argument("args", metavar="ARGS", nargs="*", help="positional arguments")
    parser.add_argument(
        "--kwargs", default="{}", metavar="JSON", help="keyword arguments as a JSON object: '{\"a\": 1}'"
    )
    parser.add_argument("--queue", default=None, metavar="Q", help="another queue than the task's own")
    parser.add_argument(
        "--countdown", type=float, default=None, metavar="S", help="run no sooner than S seconds from now"
    )
    parser.add_argument("--wait", action="store_true", help="wait for the outcome and print the state and result")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S", help="with --wait: give up after S seconds")
    parser.set_defaults(func=run)


def parse_argument(text: str) -> Any:
    """``text`` as JSON when it parses, else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f'--kwargs must be a JSON object like \'{{"text": "hi"}}\'; {text!r} is not JSON ({exc})'
        ) from exc
    if not isinstance(value, dict):
        raise ConfigError(f'--kwargs must be a JSON object like \'{{"text": "hi"}}\', got a {type(value).__name__}')
    return value


def _find(name: str) -> Task[Any, Any]:
    found = lookup(name)
    if found is not None:
        return found
    known = sorted(all_tasks())
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise TaskNotRegistered(
        f"no registered task {name!r}; {hint}registered: {', '.join(known) or 'none'}. "
        "A task of your own is found once its module is in TASKRAIL_IMPORTS"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    import_task_modules(settings.imports)
    task = _find(args.task)
    call_args = [parse_argument(arg) for arg in args.args]
    options = {key: getattr(args, key) for key in ("queue", "countdown") if getattr(args, key) is not None}
    result = task.apply_async(call_args, _kwargs(args.kwargs), client=Client(settings), **options)
    print(f"{result.id} enqueued on queue {task.queue_for(args.queue, settings)!r}")
    return _wait(result, args.timeout) if args.wait else RET_OK


def _wait(result: AsyncResult, timeout_s: float) -> int:
    """Print the outcome: ``SUCCESS`` and the result as JSON, or the failure; exit 1 unless it succeeded."""
    try:
        value = result.get(timeout=timeout_s)
    except TaskFailed as exc:
        print(f"FAILURE {exc.exc_type}: {exc.message}")
        return RET_ERROR
    except TaskRevoked:
        print("REVOKED")
        return RET_ERROR
    except ResultTimeout:
        print(f"{result.state} after {timeout_s:g} s; is a worker running on its queue? `taskrail demo` starts some")
        return RET_ERROR
    print(f"SUCCESS {json.dumps(value)}")
    return RET_OK
