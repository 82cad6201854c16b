"""What KEDA scales each queue on, and how its ``redis`` scaler reaches the server.

The default trigger (``taskrail``) is KEDA's ``metrics-api`` on ``taskrail metrics``'
``/scale/<queue>`` (workers/scale_load.py): waiting plus claimed jobs, 0 while the queue is paused,
no growth while its rate limit is used up. KEDA calls it from its own namespace, so the URL names
the Service with the namespace the manifests go into (``--namespace``). ``--keda-trigger redis``
renders KEDA's ``redis`` trigger instead: only the waiting list, but no dependency on the metrics pod.

For that one, KEDA does not take a URL: ``taskrail deploy render --redis-url URL`` reads the scheme (``rediss://``:
TLS), the user name (an ACL user: its name comes from the Secret's ``redis-username``) and the
database number from the workers' ``REDIS_URL`` given without its password, which stays in the
``taskrail-keda`` Secret (``redis-password``) and never in a rendered file.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from config.errors import ConfigError
from config.scaling import Profile
from config.sentinel import is_sentinel_url

__all__ = ["KEDA_SECRET", "TRIGGERS", "Keda", "KedaRedis"]

TRIGGERS = ("taskrail", "redis")

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


@dataclass(frozen=True)
class Keda:
    """The trigger every ScaledObject gets."""

    kind: str = "taskrail"
    namespace: str = "default"
    redis: KedaRedis = KedaRedis()
    scaled_jobs: tuple[str, ...] = ()  # queues rendered as a ScaledJob (a Job per job) instead of a Deployment
    metrics_url: str = "http://taskrail-metrics.{namespace}.svc:{port}/scale/{queue}"
    metrics_port: int = 9808

    @classmethod
    def of(cls, kind: str = "taskrail", namespace: str = "default", redis_url: str | None = None,
           scaled_jobs: tuple[str, ...] = ()) -> Keda:  # fmt: skip
        """Raises: ConfigError: an unknown trigger, a bad namespace, or a bad ``redis_url`` (see KedaRedis)."""
        if kind not in TRIGGERS:
            raise ConfigError(f"--keda-trigger must be one of {', '.join(TRIGGERS)}, got {kind!r}")
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
            raise ConfigError(f"--namespace {namespace!r} is not a Kubernetes namespace name (lowercase, digits, -)")
        if redis_url and kind != "redis":
            raise ConfigError("--redis-url is for --keda-trigger redis; the taskrail trigger reads no Redis itself")
        return cls(kind, namespace, KedaRedis.from_url(redis_url), tuple(scaled_jobs))

    def check(self, profile: Profile) -> None:
        """Raises: ConfigError: a ``--scaled-job`` queue the profile does not autoscale."""
        scaled = {plan.name for plan in profile.queues if plan.autoscale}
        for queue in self.scaled_jobs:
            if queue not in scaled:
                raise ConfigError(f"--scaled-job {queue}: profile {profile.name!r} does not autoscale a queue of that "
                                  f"name; choose one of: {', '.join(sorted(scaled)) or 'none'}")  # fmt: skip

    def trigger(self, queue: str, queue_key: str, backlog: int, auth: str) -> dict[str, Any]:
        if self.kind == "redis":
            metadata = {"listName": queue_key, "listLength": str(backlog), **self.redis.metadata()}
            return {"type": "redis", "metadata": metadata, "authenticationRef": {"name": auth}}
        url = self.metrics_url.format(namespace=self.namespace, port=self.metrics_port, queue=queue)
        return {"type": "metrics-api", "metadata": {"url": url, "valueLocation": "load", "targetValue": str(backlog)}}
