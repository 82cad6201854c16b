"""Is this worker alive? The check behind ``taskrail health``, usable as a container probe.

Healthy means Redis answers and, when a worker is named, that worker's heartbeat key
(``taskrail:hb:<name>``, refreshed every ``heartbeat_interval_s`` with a ``heartbeat_ttl_s`` expiry)
still exists. A worker is named exactly, by a prefix, or as "every worker of this host": workers
are named ``<hostname>.<queue>.<index>``, and in a pod the hostname is the pod's name.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from enum import Enum

import redis

from config.embedded import running_server
from config.errors import ConfigError
from config.sentinel import is_sentinel_url, sentinel_client
from config.settings import Settings
from config.urls import redact_url
from tasks.core import keys

__all__ = ["Health", "Status", "check_health", "host_prefix"]

DEFAULT_TIMEOUT_S = 3.0


class Status(Enum):
    """The outcome of a health check."""

    HEALTHY = "healthy"
    REDIS_DOWN = "redis-down"
    NO_HEARTBEAT = "no-heartbeat"


@dataclass(frozen=True)
class Health:
    """A status and the one line that explains it."""

    status: Status
    message: str
    workers: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status is Status.HEALTHY


def host_prefix(hostname: str | None = None) -> str:
    """The name prefix of every worker started on this host: ``<hostname>.``."""
    return f"{hostname or socket.gethostname()}."


def check_health(settings: Settings, worker: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Health:
    """Check that Redis answers and, if ``worker`` (a name or a prefix) is given, that it beats.

    Raises:
        ConfigError: ``REDIS_URL`` is malformed.
    """
    url = _url(settings)
    if url is None:
        return Health(Status.REDIS_DOWN, "no REDIS_URL is set and no embedded server runs: set REDIS_URL")
    shown = redact_url(url)
    try:
        client = _client(url, timeout_s)
        client.ping()
    except redis.RedisError as exc:
        return Health(Status.REDIS_DOWN, f"Redis at {shown} does not answer ({exc}): check REDIS_URL and the server")
    try:
        if worker is None:
            return Health(Status.HEALTHY, f"Redis at {shown} answers")
        alive = _beating(client, worker)
    except redis.RedisError as exc:
        return Health(Status.REDIS_DOWN, f"Redis at {shown} failed during the check ({exc})")
    finally:
        client.close()
    if not alive:
        return Health(
            Status.NO_HEARTBEAT,
            f"no fresh heartbeat for a worker named {worker!r}* (heartbeats expire after "
            f"{settings.heartbeat_ttl_s:g}s): the worker is stuck, stopped or not started yet",
        )
    return Health(Status.HEALTHY, f"Redis answers; heartbeat fresh for {', '.join(alive)}", alive)


def _beating(client: redis.Redis, worker: str) -> tuple[str, ...]:
    """Names matching ``worker`` (exactly or as a prefix) whose heartbeat key exists."""
    if client.exists(keys.HEARTBEAT.format(worker)):
        return (worker,)
    names = sorted(n.decode() for n in client.smembers(keys.WORKERS) if n.decode().startswith(worker))
    if not names:
        return ()
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(keys.HEARTBEAT.format(name))
        found = pipe.execute()
    return tuple(name for name, exists in zip(names, found, strict=True) if exists)


def _url(settings: Settings) -> str | None:
    # Never start the embedded server from a probe: only use one that already runs.
    if settings.redis_url:
        return settings.redis_url
    server = running_server(settings.server_file)
    return server.url if server else None


def _client(url: str, timeout_s: float) -> redis.Redis:
    if is_sentinel_url(url):
        return sentinel_client(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL {redact_url(url)!r} is not a valid Redis URL: {exc}") from exc
