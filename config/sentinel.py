"""Redis Sentinel URLs: ``redis+sentinel://[user:password@]host:26379,host2:26379/mymaster[/db]``.

A client built here asks the sentinels where the primary is and asks again after a connection
error, so producers and workers follow a failover without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

import redis
from redis.sentinel import Sentinel

from config.errors import ConfigError
from config.urls import redact_url

__all__ = ["SCHEMES", "SentinelURL", "is_sentinel_url", "parse_sentinel_url", "rq_sentinel_settings", "sentinel_client"]

SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 26379
EXAMPLE = "redis+sentinel://host1:26379,host2:26379/mymaster/0"
# Sentinels answer fast or are down; a short timeout lets discovery move on to the next one.
SENTINEL_TIMEOUT_S = 2.0
DEFAULT_SOCKET_TIMEOUT_S = 5.0  # redis-py's own default for a plain URL
QUERY_KEYS = ("sentinel_password", "sentinel_username", "socket_timeout")


@dataclass(frozen=True)
class SentinelURL:
    """Where the sentinels are, which primary they watch, and how to log in to it."""

    instances: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False
    socket_timeout_s: float | None = None

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Options for the connections to the sentinels themselves."""
        kwargs: dict[str, Any] = {"socket_timeout": SENTINEL_TIMEOUT_S, "socket_connect_timeout": SENTINEL_TIMEOUT_S}
        if self.sentinel_password is not None:
            kwargs["password"] = self.sentinel_password
        if self.sentinel_username is not None:
            kwargs["username"] = self.sentinel_username
        return kwargs

    def connection_kwargs(self) -> dict[str, Any]:
        """Options for the connections to the primary."""
        kwargs: dict[str, Any] = {"db": self.db, "ssl": self.ssl, "socket_keepalive": True}
        if self.username is not None:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        if self.socket_timeout_s is not None:
            kwargs["socket_timeout"] = self.socket_timeout_s
        return kwargs


def is_sentinel_url(url: str | None) -> bool:
    """True for ``redis+sentinel://`` and ``rediss+sentinel://`` URLs."""
    return bool(url) and str(url).split("://", 1)[0].lower() in SCHEMES


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read a Sentinel URL; the message of a ``ConfigError`` shows the expected shape.

    Raises:
        ConfigError: not a Sentinel URL, no hosts, a bad port, no primary name or a bad db number.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise _bad(url, f"the scheme must be one of {', '.join(SCHEMES)}")
    rest, _, query = rest.partition("?")
    creds, at, hosts_and_path = rest.rpartition("@")
    if not at:
        creds, hosts_and_path = "", rest
    hosts_text, _, path = hosts_and_path.partition("/")
    username, password = _credentials(creds)
    parts = [p for p in path.split("/") if p]
    if not parts:
        raise _bad(url, "name the primary after the hosts, as the sentinels know it (e.g. /mymaster)")
    if len(parts) > 2:
        raise _bad(url, f"expected /primary-name[/db] after the hosts, got /{path}")
    db = _db(url, parts[1]) if len(parts) == 2 else 0
    options = _query(url, query)
    return SentinelURL(
        instances=_instances(url, hosts_text),
        master_name=unquote(parts[0]),
        db=db,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username"),
        sentinel_password=options.get("sentinel_password"),
        ssl=scheme.lower() == "rediss+sentinel",
        socket_timeout_s=float(options["socket_timeout"]) if "socket_timeout" in options else None,
    )


def sentinel_client(url: str | SentinelURL, **overrides: Any) -> redis.Redis:
    """A client for the current primary; it rediscovers the primary after a connection error.

    ``overrides`` go to the primary's connections (e.g. ``health_check_interval``).
    """
    parsed = parse_sentinel_url(url) if isinstance(url, str) else url
    sentinel = Sentinel(
        list(parsed.instances), sentinel_kwargs=parsed.sentinel_kwargs(), **{**parsed.connection_kwargs(), **overrides}
    )
    return sentinel.master_for(parsed.master_name)


def rq_sentinel_settings(parsed: SentinelURL) -> dict[str, Any]:
    """The ``SENTINEL`` dict RQ's command line reads from a settings module (``rq worker -c config.rq``)."""
    settings: dict[str, Any] = {
        "INSTANCES": [list(pair) for pair in parsed.instances],
        "MASTER_NAME": parsed.master_name,
        "DB": parsed.db,
        "USERNAME": parsed.username,
        "PASSWORD": parsed.password,
        "SSL": parsed.ssl,
        "SENTINEL_KWARGS": parsed.sentinel_kwargs(),
        # RQ passes SOCKET_TIMEOUT even when unset (None: wait forever on a dead primary), so set it.
        "SOCKET_TIMEOUT": parsed.socket_timeout_s if parsed.socket_timeout_s is not None else DEFAULT_SOCKET_TIMEOUT_S,
        "CONNECTION_KWARGS": {"socket_keepalive": True},
    }
    return settings


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"REDIS_URL {redact_url(url)!r} is not a valid Sentinel URL: {why}; expected e.g. {EXAMPLE}")


def _credentials(creds: str) -> tuple[str | None, str | None]:
    if not creds:
        return None, None
    user, has_password, password = creds.partition(":")
    return (unquote(user) or None), (unquote(password) if has_password else None)


def _instances(url: str, hosts_text: str) -> tuple[tuple[str, int], ...]:
    instances: list[tuple[str, int]] = []
    for item in filter(None, (h.strip() for h in hosts_text.split(","))):
        host, has_port, port_text = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not has_port:
            host, port_text = item, str(DEFAULT_PORT)
        host = host.strip("[]")
        if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _bad(url, f"sentinel address {item!r} must be host or host:port with a port from 1 to 65535")
        instances.append((host, int(port_text)))
    if not instances:
        raise _bad(url, "list at least one sentinel as host:port")
    return tuple(instances)


def _db(url: str, text: str) -> int:
    if not text.isdigit():
        raise _bad(url, f"the database after the primary name must be a number, got {text!r}")
    return int(text)


def _query(url: str, query: str) -> dict[str, str]:
    options = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - set(QUERY_KEYS))
    if unknown:
        raise _bad(url, f"unknown option {unknown[0]!r}; known options: {', '.join(QUERY_KEYS)}")
    if "socket_timeout" in options:
        try:
            float(options["socket_timeout"])
        except ValueError:
            raise _bad(url, f"socket_timeout must be a number of seconds, got {options['socket_timeout']!r}") from None
    return options
