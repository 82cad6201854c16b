"""The web side: rq-dashboard secured, a JSON HTTP API, Prometheus metrics and live charts. Importing it does no work."""

from workers.dashboard.app import create_app
from workers.dashboard.auth import PASSWORD_ENV, TOKEN_ENV, AuthConfig
from workers.dashboard.server import check_bind, serve

__all__ = ["PASSWORD_ENV", "TOKEN_ENV", "AuthConfig", "check_bind", "create_app", "serve"]
