"""One pre-packed command at a time on a held connection, without redis-py's per-command machinery.

A ``redis.Redis`` call costs about 30 µs of client CPU on top of the round trip: packing each
argument, checking a connection out of the pool (a ``poll`` to see the socket holds no stale reply),
dispatching events and observability hooks, checking it back in. The producer's one-by-one enqueue
sends a command packed mostly in advance (tasks/core/prepacked.py), so it holds one connection of the
client's pool for that and writes the bytes straight to it. The connection is still redis-py's: it
connects, authenticates, checks its health (``health_check_interval``), follows a Sentinel failover
and reports errors as redis-py does.

What this line does not do, its caller does with the ordinary client: retry. A ``ConnectionError``
or ``TimeoutError`` leaves the held connection closed (it reconnects on the next call) and reaches
the caller, which sends the command again through ``redis.Redis``, with its retry policy (the
enqueue script returns the job it wrote when a call comes twice). A second thread finding the line
busy, and a client this module cannot drive (another class, or an instrumented ``execute_command``),
get ``LineBusy`` and use the pool as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.connection import AbstractConnection, BlockingConnectionPool, ConnectionPool

__all__ = ["Line", "LineBusy", "bulk", "command", "encoded", "line_of"]

_PLAIN_EXECUTE = redis.Redis.execute_command
_ATTR = "taskrail_line"  # the client's attribute holding its line: the line lives and dies with the client
# The held connection is one the pool cannot lend: only a pool that allows many more is used.
MIN_POOL_CONNECTIONS = 64


class LineBusy(Exception):
    """Raised when the held connection cannot take this call: use the client's pool instead."""


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(parts: Sequence[bytes]) -> bytes:
    """A whole RESP command from its encoded arguments."""
    return b"*%d\r\n%s" % (len(parts), b"".join([bulk(part) for part in parts]))


def encoded(conn: redis.Redis, values: Iterable[Any]) -> list[bytes]:
    """``values`` encoded as ``conn`` would send them (str as its encoding, numbers as text)."""
    encoder = conn.get_encoder()
    return [encoder.encode(value) for value in values]


def line_of(conn: redis.Redis) -> Line:
    """The line of ``conn`` (made on first use; one per client object, shared by every taskrail Client on it)."""
    line = conn.__dict__.get(_ATTR)
    if line is None:
        line = conn.__dict__.setdefault(_ATTR, Line(conn))
    return line  # type: ignore[no-any-return]


class Line:
    """One connection of ``conn``'s pool, held for one caller at a time (other threads use the pool)."""

    def __init__(self, conn: redis.Redis) -> None:
        self.redis = conn
        pool = getattr(conn, "connection_pool", None)
        # Only a plain client on a roomy pool: an instrumentation wrapper around execute_command (tracing)
        # expects to see every command, and a blocking or small pool must not lose a connection for good.
        self.usable = (
            isinstance(conn, redis.Redis)
            and not hasattr(_PLAIN_EXECUTE, "__wrapped__")
            and isinstance(pool, ConnectionPool)
            and not isinstance(pool, BlockingConnectionPool)
            and getattr(pool, "max_connections", 0) >= MIN_POOL_CONNECTIONS
        )
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._held: AbstractConnection | None = None

    def call(self, packed: bytes) -> Any:
        """Send ``packed`` (one whole command) and return its reply, raising a reply error as redis-py does.

        Raises:
            LineBusy: another thread is using the line, or the client is not one this module drives.
            redis.ConnectionError, redis.TimeoutError: the connection failed (it is closed; nothing retried).
        """
        if not self.usable or type(self.redis).execute_command is not _PLAIN_EXECUTE:  # wrapped since
            raise LineBusy
        if self._pid != os.getpid():  # a forked child: the parent's socket and lock are not its own
            self._lock, self._pid, self._held = threading.Lock(), os.getpid(), None
        lock = self._lock
        if not lock.acquire(blocking=False):
            raise LineBusy
        try:
            held = self._held
            if held is None:
                held = self._held = self.redis.connection_pool.get_connection()
            try:
                held.send_packed_command([packed])  # type: ignore[list-item]  # (types-redis: str only)
                return held.read_response()
            except redis.ResponseError:
                raise  # the reply was read: the connection is clean
            except BaseException:
                held.disconnect()  # a reply may be unread (an interrupt between send and read): never reuse it
                raise
        finally:
            lock.release()
