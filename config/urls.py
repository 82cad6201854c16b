"""Redis URLs in messages: the one place that decides what of a URL may be shown."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

HIDDEN = "***"
# ``?password=...`` (redis-py reads it), and any other query value whose name says it is a secret.
_SECRET_QUERY = re.compile(r"([?&;][^=&;#]*(?:pass|secret|token|auth|key)[^=&;#]*=)[^&;#]*", re.IGNORECASE)
# What a host list may look like: ``host``, ``host:6379``, ``[::1]:6379``, comma-separated for Sentinel.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*)(?::[0-9]*)?")


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``, for error messages and logs.

    Both the user and the password go (``redis://token@host`` carries a secret in the user part), and
    so do secret query values (``?password=``). What does not parse as a URL is not echoed: a
    scheme-less value is shown as ``***`` (or ``***@host``), a host part that is no host list as ``***``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        # Not a URL (a bare password, "host:port", a typo): only a host after an "@" is shown.
        return f"{HIDDEN}@{url.rsplit('@', 1)[1]}" if "@" in url and _is_host(url.rsplit("@", 1)[1]) else HIDDEN
    prefix = ""
    if "@" in rest:
        # The last "@": a password may hold "@", "/" or "?" unescaped.
        prefix, rest = f"{HIDDEN}@", rest.rsplit("@", 1)[1]
    netloc, tail = re.match(r"([^/?#]*)(.*)", rest, re.DOTALL).groups()  # type: ignore[union-attr]
    if not _is_host(netloc):
        netloc = HIDDEN
    tail = _SECRET_QUERY.sub(lambda m: m.group(1) + HIDDEN, tail)
    return f"{scheme}://{prefix}{netloc}{tail}"


def _is_host(netloc: str) -> bool:
    return all(_HOST.fullmatch(part) for part in netloc.split(","))
