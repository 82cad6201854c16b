"""Server-side scripts called by their SHA, in pipelines, without redis-py's extra round trip.

redis-py's ``Script`` objects make every pipeline that holds one ask ``SCRIPT EXISTS`` first: a
second round trip on the hot path. Here the SHA is computed locally and calls are plain
``EVALSHA``. When the server answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``), only the calls
that failed are loaded and run again: the rest of the pipeline has already taken effect and must
not run twice (a claim sent twice would take jobs nobody runs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline

__all__ = ["LuaScript", "run_pipeline"]

_CALLS = "taskrail_script_calls"  # pipeline attribute: command index -> (script, keys, args)


class LuaScript:
    """One Lua script, known by the SHA1 of its text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._loaded = False

    def ensure_loaded(self, conn: redis.Redis) -> None:
        """Load it on the server once per process, for pipelines whose sender cannot retry them."""
        if not self._loaded:
            conn.script_load(self.source)
            self._loaded = True

    def queue(self, pipe: Pipeline, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Add a call to ``pipe``; ``run_pipeline`` can run it again alone if the server lacked it."""
        pipe.__dict__.setdefault(_CALLS, {})[len(pipe.command_stack)] = (self, keys, args)
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def __call__(self, conn: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Call it now, loading it first if the server does not know it."""
        try:
            return conn.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            conn.script_load(self.source)
            return conn.evalsha(self.sha, len(keys), *keys, *args)


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
