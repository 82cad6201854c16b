"""The web side: rq-dashboard secured, a JSON HTTP API, Prometheus metrics and live charts. Importing it does no work."""

from workers.dashboard.app import create_app
from workers.dashboard.auth import PASSWORD_ENV, TOKEN_ENV, AuthConfig
from workers.dashboard.hosts import ALLOWED_HOSTS_ENV, AllowedHosts
from workers.dashboard.loginlink import LINK_ENV, LINK_TTL_S, LoginLink, link_url
from workers.dashboard.server import check_bind, is_loopback, serve

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "LINK_ENV",
    "LINK_TTL_S",
    "PASSWORD_ENV",
    "TOKEN_ENV",
    "AllowedHosts",
    "AuthConfig",
    "LoginLink",
    "check_bind",
    "create_app",
    "is_loopback",
    "link_url",
    "serve",
]
