"""A failed job's exception, rebuilt for ``AsyncResult.get()`` and ``.result`` without unpickling anything.

The worker stores the exception's class name (``tr_exc_type``), its text (``tr_exc_message``) and the
traceback, whose last line names the class with its module (``myapp.tasks.Overdrawn: ...``) as Python
prints it. The producer rebuilds the exception as its own class when that class is a builtin exception or
already defined in a module this process has imported and allows (the modules of registered tasks, the
standard library, taskrail's own errors); otherwise as a ``TaskFailed`` subclass named after the remote
class. Either way the exception is also a ``TaskFailed``, so ``except TaskFailed`` keeps matching. No
module named by a job is ever imported: a class is only looked up in ``sys.modules``.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from typing import Any

from config import errors
from config.errors import TaskFailed
from tasks.core.registry import all_tasks

__all__ = ["rebuild", "remote_class"]


class _Rebuilt(TaskFailed):
    """Between a rebuilt class and ``TaskFailed`` in the MRO: the original constructor's
    ``super().__init__(...)`` lands here and keeps its arguments, as ``Exception`` would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        BaseException.__init__(self, *args)


_OWN_MODULES = frozenset({"config.errors", "rq.timeouts"})
_REBUILT: dict[type[BaseException], type[TaskFailed]] = {}
_STAND_INS: dict[str, type[TaskFailed]] = {}


def rebuild(job_id: str, exc_type: str, message: str, traceback: str) -> TaskFailed:
    """The failed task's exception as described above; always an instance of ``TaskFailed``. An instance that
    cannot even be shown (its constructor wanted other arguments) gives way to the stand-in."""
    qualified, text = _last_line(traceback, exc_type)
    original = remote_class(qualified or exc_type)
    if original is None:
        stand_in = _stand_in(qualified or exc_type)
        return stand_in(job_id, exc_type, message, traceback)
    if issubclass(original, TaskFailed):
        original_failed: TaskFailed = original(job_id, exc_type, message, traceback)
        return original_failed
    cls = _both(original)
    args = _arguments(original, message if text is None else text)
    error = cls.__new__(cls, *args)
    try:
        original.__init__(error, *args)
    except Exception:  # a constructor that wants other arguments: keep what BaseException holds
        error.args = args
    try:
        str(error)
    except Exception:  # half made (its __str__ needs what the constructor would have set): the stand-in
        return _stand_in(qualified or exc_type)(job_id, exc_type, message, traceback)
    error.job_id, error.exc_type, error.message, error.traceback = job_id, exc_type, message, traceback
    return error


def remote_class(qualified: str) -> type[BaseException] | None:
    """The exception class ``qualified`` names (``KeyError``, ``myapp.tasks.Overdrawn``) if it is allowed
    and already imported here, else None. Never imports."""
    if "." not in qualified:
        builtin = getattr(builtins, qualified, None)
        return builtin if _is_exception(builtin) else None
    allowed = _allowed_modules()
    # ``pkg.mod.Outer.Inner``: the longest imported prefix is the module.
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        if module in sys.modules:
            if not _allowed(module, allowed):
                return None
            found: Any = sys.modules[module]
            for part in parts[cut:]:
                found = getattr(found, part, None)
            return found if _is_exception(found) else None
    return None


def _is_exception(found: Any) -> bool:
    # Only Exception: a remote SystemExit or KeyboardInterrupt must not stop the process that reads it.
    return isinstance(found, type) and issubclass(found, Exception)


def _allowed_modules() -> set[str]:
    return {t.func.__module__ for t in all_tasks().values()} | _OWN_MODULES


def _allowed(module: str, allowed: set[str]) -> bool:
    return module in allowed or module.partition(".")[0] in sys.stdlib_module_names


def _both(original: type[BaseException]) -> type[TaskFailed]:
    """A class that is both ``original`` and ``TaskFailed``, named like ``original`` (one per class)."""
    cls = _REBUILT.get(original)
    if cls is None:
        namespace = {"__module__": original.__module__, "__qualname__": original.__qualname__}
        cls = _REBUILT[original] = type(original.__name__, (original, _Rebuilt), namespace)
    return cls


def _stand_in(qualified: str) -> type[TaskFailed]:
    """A ``TaskFailed`` subclass named after a class this process may not rebuild (one per name)."""
    cls = _STAND_INS.get(qualified)
    if cls is None:
        module, _, name = qualified.rpartition(".")
        namespace = {"__module__": module or "builtins", "__qualname__": name, "remote_type": qualified}
        cls = _STAND_INS[qualified] = type(name or "TaskFailed", (TaskFailed,), namespace)
    return cls


def _last_line(traceback: str, exc_type: str) -> tuple[str, str | None]:
    """The module-qualified class name and full text from the traceback's last ``Type: text`` line."""
    if not exc_type.isidentifier():
        return "", None
    found = _last_match(r"^((?:[A-Za-z_]\w*\.)*" + re.escape(exc_type) + r")(: |\n|$)", traceback)
    if found is None:
        return _rq_style_line(traceback, exc_type)
    text = traceback[found.end() :].rstrip("\n") if found.group(2) == ": " else ""
    return found.group(1), text


def _rq_style_line(traceback: str, exc_type: str) -> tuple[str, str | None]:
    """A taskrail error written under RQ's class name (``rq.timeouts.JobTimeoutException (TaskTimeout): ...``,
    as workers/runner.py writes a timeout for RQ's tools): the taskrail class, and its text."""
    if not isinstance(getattr(errors, exc_type, None), type):
        return "", None
    found = _last_match(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w* \(" + re.escape(exc_type) + r"\)(: |\n|$)", traceback)
    if found is None:
        return "", None
    text = traceback[found.end() :].rstrip("\n") if found.group(1) == ": " else ""
    return f"{errors.__name__}.{exc_type}", text


def _last_match(pattern: str, text: str) -> re.Match[str] | None:
    """The last match of a multiline ``pattern`` in ``text`` (a traceback's last line of that shape)."""
    found = None
    for found in re.finditer(pattern, text, re.M):  # noqa: B007 (the last match is wanted)
        continue
    return found


def _arguments(cls: type[BaseException], message: str) -> tuple[Any, ...]:
    """The constructor arguments that give back ``message`` as ``str(exc)``: ``ValueError("bad")``,
    ``KeyError('x')`` (shown as ``'x'``), ``OSError(2, 'gone')``; else ``(message,)``."""
    if not message:
        return ()
    candidates: list[tuple[Any, ...]] = []
    try:
        literal = ast.literal_eval(message)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        literal = message
    if isinstance(literal, tuple) and len(literal) != 1:
        candidates.append(literal)
    candidates.append((message,))
    if literal is not message:
        candidates.append((literal,))
    for args in candidates:
        if _shows_as(cls, args) == message:
            return args
    return (message,)


def _shows_as(cls: type[BaseException], args: tuple[Any, ...]) -> str | None:
    try:
        return str(cls(*args))
    except Exception:
        return None
