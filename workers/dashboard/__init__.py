"""The web side: rq-dashboard secured, a JSON HTTP API, Prometheus metrics and live charts. Importing it does no work."""

from workers.dashboard.app import create_app
from workers.dashboard.auth import PASSWORD_ENV, TOKEN_ENV, AuthConfig
from workers.dashboard.hosts import ALLOWED_HOSTS_ENV, AllowedHosts
from workers.dashboard.server import check_bind, serve

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "PASSWORD_ENV",
    "TOKEN_ENV",
    "AllowedHosts",
    "AuthConfig",
    "check_bind",
    "create_app",
    "serve",
]
