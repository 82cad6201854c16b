"""Redis URLs in messages: the one place that decides what of a URL may be shown."""

from __future__ import annotations

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``, for error messages and logs.

    Both the user and the password go: ``redis://token@host`` carries a secret in the user part.
    """
    if "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:  # no scheme: all of it is credentials and host
        scheme, rest = "", url
    return f"{scheme}{sep}***@{rest.rsplit('@', 1)[1]}"
