"""The ``Host`` names the dashboard answers to, against DNS rebinding.

A page on ``http://evil.example`` whose name the attacker re-points at the dashboard's address makes the
browser send ``Host: evil.example`` (and a matching ``Origin``). Such a request gets 400 before anything
else runs. Allowed are: the loopback names (``localhost``, ``127.0.0.1``, ``::1``; a rebinding name is never
one of them), the address the dashboard binds, any IP address when it binds all interfaces (an address
is no name an attacker controls; scrapers and probes reach a pod by its IP), and the names listed in
``TASKRAIL_DASHBOARD_ALLOWED_HOSTS`` or with ``--allowed-host`` (a leading dot allows a domain and
its subdomains: ``.example.com``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from flask import Response, current_app, jsonify, request

from config.errors import ConfigError

__all__ = ["ALLOWED_HOSTS_ENV", "AllowedHosts", "check_host"]

ALLOWED_HOSTS_ENV = "TASKRAIL_DASHBOARD_ALLOWED_HOSTS"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class AllowedHosts:
    """Host names (lower case, no port) the dashboard answers to."""

    names: frozenset[str] = LOOPBACK_NAMES
    domains: tuple[str, ...] = ()  # ".example.com": the domain and its subdomains
    any_address: bool = False  # any IP address literal (when bound to all interfaces)

    @classmethod
    def for_bind(cls, bind: str, extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> AllowedHosts:
        """The names for a dashboard bound to ``bind``, plus ``extra`` and the environment's list.

        Raises:
            ConfigError: a listed name is no host name.
        """
        env = os.environ if environ is None else environ
        wanted = set()
        for entry in [*extra, *env.get(ALLOWED_HOSTS_ENV, "").split(",")]:
            if entry.strip():
                name = _host_name(entry)
                if not name or "/" in name:
                    raise ConfigError(
                        f"{ALLOWED_HOSTS_ENV}: {entry.strip()!r} is not a host name; list names like "
                        "dashboard.example.com or .example.com, comma-separated"
                    )
                wanted.add(name)
        host = _normal(bind)
        names = LOOPBACK_NAMES | {n for n in wanted if not n.startswith(".")}
        if host not in WILDCARD_BINDS:
            names |= {host}
        domains = tuple(sorted(n for n in wanted if n.startswith(".")))
        return cls(frozenset(names), domains, any_address=host in WILDCARD_BINDS)

    def allows(self, host_header: str) -> bool:
        """True when the ``Host`` header (maybe with a port) names this dashboard."""
        name = _host_name(host_header)
        if not name:
            return False
        if name in self.names or any(name.endswith(d) or name == d[1:] for d in self.domains):
            return True
        return self.any_address and _is_address(name)


def _normal(name: str) -> str:
    return name.strip().strip("[]").rstrip(".").lower()


def _host_name(host_header: str) -> str:
    """``Host`` without its port: ``[::1]:9181`` -> ``::1``, ``Example.COM.:80`` -> ``example.com``."""
    value = host_header.strip()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        return _normal(name) if sep and (not rest or (rest[0] == ":" and rest[1:].isdigit())) else ""
    name, sep, port = value.partition(":")
    if sep and not port.isdigit():
        return ""
    return _normal(name)


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def check_host() -> Response | None:
    """The app's first ``before_request``: 400 for a ``Host`` the dashboard does not answer to."""
    allowed: AllowedHosts = current_app.extensions["taskrail.allowed_hosts"]
    if allowed.allows(request.headers.get("Host", "")):
        return None
    response = jsonify(
        error=f"this dashboard does not answer to that Host name; list the name it is reached by in {ALLOWED_HOSTS_ENV}"
    )
    response.status_code = 400
    return response
