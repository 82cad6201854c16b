"""Typed settings, the embedded server, the connection and the error tree; imports nothing else of taskrail."""

from config.connection import connect, redis_url
from config.embedded import EmbeddedServer, ensure_server, start_server, stop_server
from config.errors import ConfigError, ConnectionFailed, TaskrailError
from config.scaling import Autoscale, Profile, QueuePlan, ScalingFile, load_profile, load_scaling
from config.settings import Settings, load_settings

__all__ = [
    "Autoscale",
    "ConfigError",
    "ConnectionFailed",
    "EmbeddedServer",
    "Profile",
    "QueuePlan",
    "ScalingFile",
    "Settings",
    "TaskrailError",
    "connect",
    "ensure_server",
    "load_profile",
    "load_scaling",
    "load_settings",
    "redis_url",
    "start_server",
    "stop_server",
]
