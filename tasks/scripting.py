"""Server-side scripts called by their SHA, in pipelines, without redis-py's extra round trip.

redis-py's ``Script`` objects make every pipeline that holds one ask ``SCRIPT EXISTS`` first: a
second round trip on the hot path. Here the SHA is computed locally, calls are plain ``EVALSHA``,
and only when the server answers NOSCRIPT (after a restart or ``SCRIPT FLUSH``) are the scripts
loaded and the pipeline sent again; a script that fails with NOSCRIPT has done nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.client import Pipeline

__all__ = ["LuaScript", "run_pipeline"]


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
        """Add a call to ``pipe``."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def __call__(self, conn: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Call it now, loading it first if the server does not know it."""
        try:
            return conn.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            conn.script_load(self.source)
            return conn.evalsha(self.sha, len(keys), *keys, *args)


def run_pipeline(conn: redis.Redis, build: Callable[[Pipeline], None], scripts: Sequence[LuaScript]) -> list[Any]:
    """Build and send one non-transactional pipeline; on NOSCRIPT load ``scripts`` and send it again."""
    for attempt in (1, 2):
        with conn.pipeline(transaction=False) as pipe:
            build(pipe)
            try:
                return list(pipe.execute())
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                for script in scripts:
                    conn.script_load(script.source)
    raise AssertionError("unreachable")
