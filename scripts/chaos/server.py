"""The chaos run's server: a private one (append-only, restartable on the same port and dir) or ``REDIS_URL``'s."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from config.embedded import process_alive, start_server
from config.errors import ConfigError, ConnectionFailed
from config.urls import redact_url

__all__ = ["ChaosServer"]

STOP_TIMEOUT_S = 30.0


class ChaosServer:
    """Where the run's data lives. ``restart`` is None for a server given by ``REDIS_URL`` (not ours to restart)."""

    def __init__(self, url: str, port: int, pid: int | None, data_dir: Path | None) -> None:
        self.url = url
        self.port = port
        self.pid = pid
        self.data_dir = data_dir

    @classmethod
    def private(cls, data_dir: Path) -> ChaosServer:
        server = start_server(data_dir, appendonly=True)
        return cls(server.url, server.port, server.pid, data_dir)

    @classmethod
    def given(cls, url: str) -> ChaosServer:
        """``REDIS_URL``'s server, whose database must be empty: the checker reads every key of it.

        Raises:
            ConfigError: the database holds keys.
        """
        conn = redis.Redis.from_url(url)
        try:
            size = conn.dbsize()
            port = int(conn.connection_pool.connection_kwargs.get("port", 6379))
        finally:
            conn.close()
        if size:
            raise ConfigError(
                f"REDIS_URL {redact_url(url)} holds {size} keys; taskrail chaos needs an empty database (it counts "
                "every job and claim in it): point REDIS_URL at an empty one (e.g. .../15), or unset it to use a "
                "private server"
            )
        return cls(url, port, None, None)

    @property
    def restartable(self) -> bool:
        return self.pid is not None

    def restart(self) -> None:
        """Stop the server (SIGTERM: it writes its append-only file) and start it again on the same port and dir.

        Raises:
            ConnectionFailed: it did not stop, or did not start again.
        """
        assert self.pid is not None and self.data_dir is not None
        self._stop()
        server = start_server(self.data_dir, self.port, appendonly=True)
        self.pid = server.pid

    def stop(self) -> None:
        if self.pid is not None:
            self._stop()
            self.pid = None

    def _stop(self) -> None:
        assert self.pid is not None
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while process_alive(self.pid):
            if time.monotonic() > deadline:
                raise ConnectionFailed(f"the chaos server (pid {self.pid}) did not stop within {STOP_TIMEOUT_S:.0f}s")
            time.sleep(0.02)
