"""How KEDA's ``redis`` scaler reaches the server the workers use: TLS, an ACL user, a database.

KEDA does not take a URL: ``taskrail deploy render --redis-url URL`` reads the scheme (``rediss://``:
TLS), the user name (an ACL user: its name comes from the Secret's ``redis-username``) and the
database number from the workers' ``REDIS_URL`` given without its password, which stays in the
``taskrail-keda`` Secret (``redis-password``) and never in a rendered file.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from config.errors import ConfigError
from config.sentinel import is_sentinel_url

__all__ = ["KEDA_SECRET", "KedaRedis"]

KEDA_SECRET = "taskrail-keda"  # keys: redis-address (host:port), redis-password, and redis-username with a user


@dataclass(frozen=True)
class KedaRedis:
    """What the ScaledObjects' triggers and their TriggerAuthentication say about the server."""

    tls: bool = False
    database: int = 0
    username: bool = False

    @classmethod
    def from_url(cls, url: str | None) -> KedaRedis:
        """From the workers' ``REDIS_URL`` without its password; None: plain, database 0, no user.

        Raises:
            ConfigError: a password in it, a Sentinel URL, another scheme, or a database that is not a number.
        """
        if not url:
            return cls()
        where = "taskrail deploy render --redis-url"
        if is_sentinel_url(url):
            raise ConfigError(f"{where}: a Sentinel URL; use KEDA's redis-sentinel trigger (docs/deploy.md)")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigError(f"{where}: expected redis:// or rediss://, got {parts.scheme or 'no'} scheme")
        if parts.password is not None or "password=" in parts.query:
            raise ConfigError(f"{where}: leave the password out; it goes into the {KEDA_SECRET} Secret only")
        path = parts.path.strip("/") or "0"
        if not path.isdigit():
            raise ConfigError(f"{where}: the database must be a number like /0, got /{path}")
        return cls(tls=parts.scheme == "rediss", database=int(path), username=bool(parts.username))

    def metadata(self) -> dict[str, str]:
        """Trigger metadata beyond the list: only what differs from KEDA's defaults."""
        out = {}
        if self.tls:
            out["enableTLS"] = "true"
        if self.database:
            out["databaseIndex"] = str(self.database)
        return out

    def secret_refs(self) -> list[dict[str, Any]]:
        refs = [("address", "redis-address"), ("password", "redis-password")]
        if self.username:
            refs.append(("username", "redis-username"))
        return [{"parameter": p, "name": KEDA_SECRET, "key": k} for p, k in refs]
