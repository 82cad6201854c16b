"""Login sessions and failed-credential counters, kept in Redis so that logout and throttling hold everywhere.

A signed cookie alone cannot be revoked: a copy replayed after logout would work until it expires. So the
cookie carries a random session id, and the session lives only while Redis holds its key (the SHA-256 of
the id, so that whoever reads Redis cannot take a session over). Failed passwords and tokens are counted
per client address and minute, in Redis too, so every dashboard process sees the same counts.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import redis

from tasks.core import keys

__all__ = ["FAILED_LIMIT", "FailureThrottle", "SessionStore"]

FAILED_LIMIT = 10  # failed passwords or tokens per client and minute; then 429 until the minute is over
WINDOW_S = 60


class SessionStore:
    """Server-side sessions: :meth:`create` on login, :meth:`alive` on every request, :meth:`end` on logout."""

    def __init__(self, conn: redis.Redis, ttl_s: int) -> None:
        self.conn = conn
        self.ttl_s = ttl_s

    @staticmethod
    def _key(session_id: str) -> str:
        return keys.DASHBOARD_SESSION.format(hashlib.sha256(session_id.encode()).hexdigest())

    def create(self) -> str:
        """A new session id, alive for ``ttl_s`` seconds unless ended first."""
        session_id = secrets.token_urlsafe(32)
        self.conn.set(self._key(session_id), int(time.time()), ex=self.ttl_s)
        return session_id

    def alive(self, session_id: object) -> bool:
        return isinstance(session_id, str) and bool(self.conn.exists(self._key(session_id)))

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self.conn.delete(self._key(session_id))


class FailureThrottle:
    """Failed passwords and tokens per client address in the current minute; past the limit the client waits."""

    def __init__(self, conn: redis.Redis, limit: int = FAILED_LIMIT) -> None:
        self.conn = conn
        self.limit = limit

    @staticmethod
    def _window() -> tuple[int, int]:
        """The current window's number and the seconds left in it (at least 1)."""
        now = time.time()
        return int(now // WINDOW_S), max(1, int(WINDOW_S - now % WINDOW_S + 0.999))

    def retry_after(self, client: str) -> int | None:
        """Seconds ``client`` must wait before trying again, or None when it may try now."""
        window, left = self._window()
        count = self.conn.get(keys.DASHBOARD_FAILURES.format(client, window))
        return left if count is not None and int(count) >= self.limit else None

    def failed(self, client: str) -> None:
        window, _ = self._window()
        key = keys.DASHBOARD_FAILURES.format(client, window)
        with self.conn.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * WINDOW_S)
            pipe.execute()
