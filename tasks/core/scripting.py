"""Server-side scripts called by their SHA, in pipelines, without redis-py's extra round trip.

redis-py's ``Script`` objects make every pipeline that holds one ask ``SCRIPT EXISTS`` first: a
second round trip on the hot path. Here the SHA is computed locally and calls are plain
``EVALSHA``. When the server answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``), only the calls
that failed are loaded and run again: the rest of the pipeline has already taken effect and must
not run twice (a claim sent twice would take jobs nobody runs).

Every script is a file: one command per ``lua/<name>.lua``, shared pieces in ``lua/includes/``.
A line ``--- @include "includes/settle"`` is replaced by that file (itself expanded), the first time
it is named in a command; later lines naming it again are dropped, so a command is one chunk, in
order, defining each piece once. ``--- @include "keys"`` is generated from tasks/core/keys.py, with
only the names the command uses (the table is built on every call: a command does not pay for keys
it never names).
"""

from __future__ import annotations

import functools
import hashlib
import re
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline

from tasks.core.keys import lua_keys

__all__ = ["LUA_DIR", "LuaScript", "expand", "load_command", "run_pipeline"]

LUA_DIR = Path(__file__).with_name("lua")
INCLUDE = re.compile(r'^--- @include "([\w./-]+)"\s*$')
GENERATED: dict[str, Callable[[set[str]], str]] = {"keys": lua_keys}  # built from Python, not read from a file
_USED = re.compile(r"\bK\.(\w+)")
_SLOT = "\0generated:{}\0"

_CALLS = "taskrail_script_calls"  # pipeline attribute: command index -> (script, keys, args)


class LuaScript:
    """One Lua script, known by the SHA1 of its text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._loaded_on: weakref.WeakSet[redis.Redis] = weakref.WeakSet()

    def ensure_loaded(self, conn: redis.Redis) -> None:
        """Load it once per connection, for pipelines whose sender cannot retry them (a transaction)."""
        if conn not in self._loaded_on:
            conn.script_load(self.source)
            self._loaded_on.add(conn)

    def queue(self, pipe: Pipeline, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Add a call to ``pipe``; ``run_pipeline`` can run it again alone if the server lacked it."""
        pipe.__dict__.setdefault(_CALLS, {})[len(pipe.command_stack)] = (self, keys, args)
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def __call__(self, conn: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Call it now; with its source when the server does not know it."""
        try:
            return conn.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            # EVAL carries the source and caches it: unlike SCRIPT LOAD then EVALSHA, no second
            # SCRIPT FLUSH (or restart) can slip in between and fail the call.
            return conn.eval(self.source, len(keys), *keys, *args)


def run_pipeline(conn: redis.Redis, build: Callable[[Pipeline], None]) -> list[Any]:
    """Build and send one non-transactional pipeline; script calls the server did not know are
    loaded and run once more on their own. Any other error is raised."""
    with conn.pipeline(transaction=False) as pipe:
        build(pipe)
        calls: dict[int, tuple[LuaScript, Sequence[Any], Sequence[Any]]] = dict(pipe.__dict__.get(_CALLS, {}))
        results = list(pipe.execute(raise_on_error=False))
    for index, result in enumerate(results):
        if isinstance(result, redis.exceptions.NoScriptError) and index in calls:
            script, keys, args = calls[index]
            results[index] = script(conn, keys, args)
        elif isinstance(result, Exception):
            raise result
    return results


@functools.cache
def load_command(name: str) -> LuaScript:
    """The command ``lua/<name>.lua`` with its includes expanded, ready to call (built once per process).

    Raises:
        FileNotFoundError: no such command, or an include it names does not exist.
    """
    path = LUA_DIR / f"{name}.lua"
    return LuaScript(expand(path.read_text(), path.name))


def expand(source: str, origin: str = "<source>", root: Path = LUA_DIR) -> str:
    """``source`` with every include line replaced by the included text, each include once, in order.

    Raises:
        FileNotFoundError: an include names no file; the message gives the including file and line.
        ValueError: a malformed include line (file and line in the message).
    """
    text = _expand(source, origin, set(), root)
    used = {name for line in text.splitlines() for name in _USED.findall(line.split("--", 1)[0])}  # code, not comments
    for name, render in GENERATED.items():
        text = text.replace(_SLOT.format(name), render(used).rstrip("\n"))
    return text


def _expand(source: str, origin: str, seen: set[str], root: Path) -> str:
    out: list[str] = []
    for number, line in enumerate(source.splitlines(), 1):
        match = INCLUDE.match(line)
        if match is None:
            if line.startswith("--- @include"):
                raise ValueError(f'{origin}:{number}: malformed include, write --- @include "includes/<name>"')
            out.append(line)
            continue
        name = match.group(1)
        if name in seen:
            continue
        seen.add(name)
        if name in GENERATED:
            out.append(_SLOT.format(name))  # rendered once the whole command is known
            continue
        path = root / f"{name}.lua"
        if not path.is_file():
            raise FileNotFoundError(f"{origin}:{number}: include {name!r} not found: no file {path}")
        out.append(_expand(path.read_text(), path.relative_to(root).as_posix(), seen, root).rstrip("\n"))
    return "\n".join(out) + "\n"
