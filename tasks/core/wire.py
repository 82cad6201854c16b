"""One pre-packed command at a time on a held connection, without redis-py's per-command machinery.

A ``redis.Redis`` call costs about 30 µs of client CPU on top of the round trip: packing each
argument, checking a connection out of the pool (a ``poll`` to see the socket holds no stale reply),
dispatching events and observability hooks, checking it back in. The producer's one-by-one enqueue
sends a command packed mostly in advance (tasks/core/prepacked.py), so it holds one connection of the
client's pool for that and writes the bytes straight to it. The connection is still redis-py's: it
connects, authenticates, checks its health (``health_check_interval``), follows a Sentinel failover
and reports errors as redis-py does.

Threads calling at once share the line: a call finding it busy waits in line, and the thread that
next holds it sends every waiting call in one write and reads their replies in order (automatic
pipelining, as ioredis and BullMQ do it), so a burst from many threads costs fewer round trips. A
single caller never waits and pays nothing for it. A call that waits more than ``WAIT_S`` without
being taken (a stuck caller, or a signal handler enqueueing while its own thread holds the line)
gets ``LineBusy``, and so does a client this module cannot drive (an instrumented
``execute_command``, a bounded pool): its caller uses the pool as before.

What this line does not do, its caller does with the ordinary client: retry. A ``ConnectionError``
or ``TimeoutError`` leaves the held connection closed (it reconnects on the next call) and reaches
the callers whose replies were not read, who send their commands again through ``redis.Redis``, with
its retry policy (the enqueue script returns the job it wrote when a call comes twice).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.connection import AbstractConnection, BlockingConnectionPool, ConnectionPool

__all__ = ["Line", "LineBusy", "bulk", "command", "encoded", "line_of"]

_PLAIN_EXECUTE = redis.Redis.execute_command
_ATTR = "taskrail_line"  # the client's attribute holding its line: the line lives and dies with the client
# The held connection is one the pool cannot lend: only a pool that allows many more is used.
MIN_POOL_CONNECTIONS = 64
WAIT_S = 0.05  # how long a call waits for the line before it takes a connection of the pool


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


class _Call:
    """One caller's command on the line, and once sent, its reply or error (compared by identity)."""

    __slots__ = ("done", "error", "packed", "reply")

    def __init__(self, packed: bytes) -> None:
        self.packed = packed
        self.done = False
        self.reply: Any = None
        self.error: BaseException | None = None


class Line:
    """One connection of ``conn``'s pool, held for the producer's calls; concurrent calls share its writes."""

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
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._waiting: deque[_Call] = deque()
        self._held: AbstractConnection | None = None

    def call(self, packed: bytes) -> Any:
        """Send ``packed`` (one whole command) and return its reply, raising a reply error as redis-py does.

        Raises:
            LineBusy: the line stayed busy for WAIT_S (a caller stuck, or this thread's own call interrupted by
                a signal handler that enqueues), or the client is not one this module drives.
            redis.ConnectionError, redis.TimeoutError: the connection failed (it is closed; nothing retried).
        """
        if not self.usable or type(self.redis).execute_command is not _PLAIN_EXECUTE:  # wrapped since
            raise LineBusy
        if self._pid != os.getpid():  # a forked child: the parent's socket, lock and callers are not its own
            self._reset()
        lock = self._lock
        if lock.acquire(blocking=False):  # the line is free: the usual case of a single caller
            try:
                if not self._waiting:
                    return self._send_one(packed)
                mine = _Call(packed)
                self._waiting.append(mine)
                self._send_waiting()
            finally:
                lock.release()
        else:
            mine = self._wait_for_line(packed, lock)
        if mine.error is not None:
            raise mine.error
        return mine.reply

    def _wait_for_line(self, packed: bytes, lock: threading.Lock) -> _Call:
        """Queue a call behind the thread holding the line, which may send it with its own; else send the
        waiting calls once the line is free."""
        mine = _Call(packed)
        self._waiting.append(mine)
        while not lock.acquire(timeout=WAIT_S):
            try:
                self._waiting.remove(mine)  # not taken by the thread holding the line: never sent
            except ValueError:
                continue  # taken: its reply is read before the line is free
            raise LineBusy
        try:
            if not mine.done:
                self._send_waiting()
        finally:
            lock.release()
        return mine

    def _connection(self) -> AbstractConnection:
        held = self._held
        if held is None:
            held = self._held = self.redis.connection_pool.get_connection()
        return held

    def _send_one(self, packed: bytes) -> Any:
        held = self._connection()
        try:
            held.send_packed_command([packed])  # type: ignore[list-item]  # (types-redis: str only)
            return held.read_response()
        except redis.ResponseError:
            raise  # the reply was read: the connection is clean
        except BaseException:
            held.disconnect()  # a reply may be unread (an interrupt between send and read): never reuse it
            raise

    def _send_waiting(self) -> None:
        """Send every waiting call in one write and read their replies in order (the lock held)."""
        batch: list[_Call] = []
        while self._waiting:
            batch.append(self._waiting.popleft())
        try:
            held = self._connection()
            # (types-redis types the argument as str only)
            held.send_packed_command([b"".join([call.packed for call in batch])])  # type: ignore[list-item]
            for call in batch:
                try:
                    call.reply = held.read_response()
                except redis.ResponseError as exc:  # the reply was read: the next one follows
                    call.error = exc
                call.done = True
        except BaseException as exc:
            if self._held is not None:
                self._held.disconnect()  # a reply may be unread (an interrupt between send and read): never reuse
            for call in batch:
                if not call.done:  # their callers send them again through redis-py (a resent enqueue finds its job)
                    call.error, call.done = redis.ConnectionError(f"the line failed: {exc!r}"), True
            raise
