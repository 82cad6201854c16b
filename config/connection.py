"""From settings to a live Redis client: the configured URL, or the user's running embedded server."""

from __future__ import annotations

import functools
import sys

import redis

from config.embedded import running_server
from config.errors import ConfigError, ConnectionFailed
from config.sentinel import is_sentinel_url, sentinel_client
from config.settings import Settings
from config.urls import redact_url

__all__ = ["connect", "redis_url"]


def redis_url(settings: Settings) -> str:
    """The URL to use: ``REDIS_URL`` when set (maybe a ``redis+sentinel://`` URL), else the embedded server's.

    Never starts a server (only ``taskrail server start`` and ``taskrail demo`` do): with no ``REDIS_URL``
    it uses the one the user's server file names, says so once on stderr, and otherwise fails at once.

    Raises:
        ConnectionFailed: no ``REDIS_URL`` and no embedded server running for this user.
    """
    if settings.redis_url:
        return settings.redis_url
    server = running_server(settings.server_file)
    if server is None:
        raise ConnectionFailed(
            f"no REDIS_URL is set and no embedded server is running for this user (none named by "
            f"{settings.server_file}): run `taskrail server start`, or set REDIS_URL to your Redis server"
        )
    _announce(server.url, str(settings.server_file))
    return server.url


@functools.cache
def _announce(url: str, server_file: str) -> None:
    """Name the embedded server in use, once per process (the first line a command or worker prints)."""
    print(f"taskrail: using the embedded server at {redact_url(url)} (named by {server_file})", file=sys.stderr)


def connect(settings: Settings, *, check: bool = True) -> redis.Redis:
    """Open a client for the configured server and check that it answers.

    Raises:
        ConfigError: the URL is malformed.
        ConnectionFailed: the server does not answer; the message names the URL and what to check.
    """
    url = redis_url(settings)
    try:
        if is_sentinel_url(url):  # a client that follows the primary through a failover
            client = sentinel_client(url, health_check_interval=30)
        else:
            client = redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL {redact_url(url)!r} is not a valid Redis URL: {exc}") from exc
    if check:
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise ConnectionFailed(f"Redis at {redact_url(url)} refused the password: check REDIS_URL") from exc
        except redis.RedisError as exc:
            raise ConnectionFailed(
                f"cannot reach Redis at {redact_url(url)} ({exc}): check that the server runs and "
                "that REDIS_URL names the right host, port and password"
            ) from exc
    return client
