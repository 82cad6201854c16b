"""What every result handle shares: the client it reads through, and revoking jobs with the flow cascade.

``AsyncResult`` (tasks/core/result.py) and ``GroupResult`` (tasks/core/groups.py) both build on this
module; groups.py builds on result.py, and result.py no longer reaches back into groups.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.client import Pipeline

from tasks.core.client import Client, default_client
from tasks.core.protocol import utcnow_text
from tasks.core.scripting import load_command, run_pipeline

__all__ = ["ClientBound", "revoke_jobs"]


class ClientBound:
    """A handle that reads through a given client, or the process's default one when none was given."""

    _client: Client | None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = default_client()
        return self._client


def revoke_jobs(client: Client, ids: Sequence[str], chunk: int = 1000) -> list[str]:
    """Revoke jobs and cascade to what waited on them; one outcome per id (canceled, stopping, ...)."""
    script = load_command("flow_revoke")  # tasks/core/lua/flow_revoke.lua
    head = [time.time(), utcnow_text(), client.settings.events_maxlen]

    def build(pipe: Pipeline) -> None:
        for start in range(0, len(ids), chunk):
            script.queue(pipe, [], [*head, *ids[start : start + chunk]])

    out: list[str] = []
    for reply in run_pipeline(client.redis, build):
        out += [r.decode() if isinstance(r, bytes) else str(r) for r in reply]
    return out
