"""Typed settings, the embedded server and the connection; imports nothing else of taskrail."""

from config.connection import connect, redis_url
from config.embedded import EmbeddedServer, ensure_server, start_server, stop_server
from config.errors import ConfigError, ConnectionFailed, TaskrailError
from config.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "ConnectionFailed",
    "EmbeddedServer",
    "Settings",
    "TaskrailError",
    "connect",
    "ensure_server",
    "load_settings",
    "redis_url",
    "start_server",
    "stop_server",
]
