"""Celery's ``task_routes``: a task name or glob pattern -> the queue its calls go to.

The setting is a mapping (``{"tasks.emails.*": "email", "tasks.reports.generate_report": {"queue": "reports"}}``)
or a list of such mappings, consulted in order. As in Celery's ``MapRoute``, within one mapping an
exact name wins over the patterns, and the patterns are tried in the order written; ``*`` matches any
run of characters, and a pattern matches from the start of the name. From the environment,
``TASKRAIL_TASK_ROUTES`` takes the same as JSON, or ``pattern=queue,pattern=queue``.

Settings keep the routes as plain tuples (hashable, frozen); :func:`route` compiles them once per
process and then each lookup is a dictionary get and a few regex matches, with no server round trip.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from config.errors import ConfigError

__all__ = ["Routes", "parse_routes", "route"]

# One router: (pattern, queue) pairs in the order written; the setting: routers in order.
Routes = tuple[tuple[tuple[str, str], ...], ...]
_QUEUE = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # the rule of tasks/core/validate.py, which config/ cannot import
_FIX = "write task_routes as {'task.name.or.glob*': 'queue'} (or a list of such mappings)"


def parse_routes(raw: Any, source: str = "task_routes") -> Routes:
    """Validate ``raw`` (YAML/JSON data, or the environment's text) into :data:`Routes`.

    Raises:
        ConfigError: not a mapping or list of mappings, an empty pattern, or a bad queue name.
    """
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        raw = _from_text(raw, source)
    routers = [raw] if isinstance(raw, dict) else raw
    if not isinstance(routers, list | tuple):
        raise ConfigError(f"{source}: expected a mapping or a list of mappings, got {type(raw).__name__}; {_FIX}")
    return tuple(_router(router, f"{source}[{i}]" if len(routers) > 1 else source) for i, router in enumerate(routers))


def _from_text(text: str, source: str) -> Any:
    if text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: invalid JSON ({exc}); {_FIX}") from exc
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pattern, sep, queue = item.partition("=")
        if not sep:
            raise ConfigError(f"{source}: {item!r} is not pattern=queue; write e.g. 'tasks.emails.*=email'")
        pairs[pattern.strip()] = queue.strip()
    return pairs


def _router(router: Any, where: str) -> tuple[tuple[str, str], ...]:
    if isinstance(router, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in router):
        router = dict(router)  # the tuples the settings hold, given back
    if not isinstance(router, dict):
        raise ConfigError(f"{where}: expected a mapping of task names or globs to queues; {_FIX}")
    pairs = []
    for pattern, target in router.items():
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"{where}: a route's pattern must be a task name or glob, got {pattern!r}")
        queue = target.get("queue") if isinstance(target, dict) else target
        if isinstance(target, dict) and set(target) - {"queue"}:
            extra = sorted(set(target) - {"queue"})[0]
            raise ConfigError(f"{where}: route {pattern!r}: only 'queue' is supported, not {extra!r}; remove it")
        if not isinstance(queue, str) or not _QUEUE.fullmatch(queue):
            raise ConfigError(
                f"{where}: route {pattern!r}: queue {queue!r} is not a queue name (1-100 letters, digits, "
                "'_', '.' or '-'); fix the queue name"
            )
        pairs.append((pattern.strip(), queue))
    return tuple(pairs)


def route(routes: Routes, name: str) -> str | None:
    """The queue ``routes`` send task ``name`` to, or None when no route matches."""
    for exact, patterns in _compiled(routes):
        if name in exact:
            return exact[name]
        for regex, queue in patterns:
            if regex.match(name):
                return queue
    return None


@functools.lru_cache(maxsize=16)
def _compiled(routes: Routes) -> list[tuple[dict[str, str], list[tuple[re.Pattern[str], str]]]]:
    compiled = []
    for router in routes:
        exact = {p: q for p, q in router if "*" not in p}
        patterns = [(re.compile(".*?".join(map(re.escape, p.split("*")))), q) for p, q in router if "*" in p]
        compiled.append((exact, patterns))
    return compiled
