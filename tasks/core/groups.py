"""Results of canvas flows: ``GroupResult`` (a ``ResultSet`` under the group's id) and ``FlowResult`` (an
``AsyncResult`` that knows its ``.parent``). ``ResultSet`` and ``read_outcomes`` live in
tasks/core/canvas_results.py (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.core import keys
from tasks.core.canvas_results import MemberOutcome, ResultSet, read_outcomes
from tasks.core.client import Client
from tasks.core.result import AsyncResult

__all__ = ["FlowResult", "GroupResult", "MemberOutcome", "ResultSet", "read_outcomes"]


class FlowResult(AsyncResult):
    """An ``AsyncResult`` of a flow step: ``.parent`` walks back; ``revoke()`` also stops what waits on it."""

    def __init__(self, job_id: str, client: Client | None = None, parent: FlowResult | GroupResult | None = None):
        super().__init__(job_id, client)
        self.parent = parent


class GroupResult(ResultSet):
    """The results of a group, in input order, under the group's id: a ``ResultSet`` that can be saved
    and restored by id."""

    def __init__(
        self,
        group_id: str,
        results: Sequence[AsyncResult],
        client: Client | None = None,
        parent: FlowResult | GroupResult | None = None,
    ) -> None:
        super().__init__(results, client)
        self.id = group_id
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult {self.id} ({len(self.results)} results)>"

    @classmethod
    def restore(cls, group_id: str, client: Client | None = None) -> GroupResult:
        """The GroupResult of a group applied earlier (kept as long as a failed job is).

        Raises:
            KeyError: no group with that id is known (never applied, or expired).
        """
        result = cls(group_id, [], client)
        ids = [i.decode() for i in result.client.redis.lrange(keys.GROUP.format(group_id), 0, -1)]
        if not ids:
            raise KeyError(f"no group {group_id!r}: it was never applied or has expired")
        result.results = [FlowResult(i, result.client) for i in ids]
        return result

    def save(self) -> GroupResult:
        """Keep the member ids under the group's id for ``restore`` (applying a group already did), as long
        as a failed job is kept."""
        settings = self.client.settings
        key, ttl = keys.GROUP.format(self.id), max(settings.failure_ttl_s, settings.result_ttl_s)
        with self.client.redis.pipeline() as pipe:
            pipe.delete(key)
            for start in range(0, len(self.ids), 5000):
                pipe.rpush(key, *self.ids[start : start + 5000])
            pipe.expire(key, ttl)
            pipe.execute()
        return self

    def delete(self) -> None:
        """Forget the saved member ids (the members' results stay)."""
        self.client.redis.delete(keys.GROUP.format(self.id))
