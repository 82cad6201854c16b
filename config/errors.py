"""The root of taskrail's error tree and the errors config/ raises; re-exported by tasks.core.errors."""

from __future__ import annotations

__all__ = ["ConfigError", "ConnectionFailed", "TaskrailError"]


class TaskrailError(Exception):
    """Raised when anything in taskrail fails; the root of the tree."""


class ConfigError(TaskrailError):
    """Raised when settings, a profile or the environment hold a bad value."""


class ConnectionFailed(TaskrailError):
    """Raised when the Redis server at the configured URL cannot be reached."""
