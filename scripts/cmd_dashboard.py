"""``taskrail dashboard [--host H] [--port P]``: the web dashboard, API and metrics."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from config.settings import check_port, load_settings
from workers.exitcodes import RET_OK

if TYPE_CHECKING:
    from workers.dashboard import AuthConfig

__all__ = ["register"]

DEFAULT_PORT = 9181


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dashboard", help="serve the dashboard, the HTTP API and /metrics")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; another "
                        "address needs TASKRAIL_DASHBOARD_PASSWORD or TASKRAIL_DASHBOARD_TOKEN)")  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--public-metrics", action="store_true", help="serve /metrics without credentials")
    parser.add_argument("--secure-cookie", action="store_true", help="mark the session cookie Secure (HTTPS proxy)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="a Host name it is reached by, beyond the bind address and localhost (repeatable; "
                        "also TASKRAIL_DASHBOARD_ALLOWED_HOSTS, comma-separated; .example.com for a domain)")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: Flask and rq-dashboard would slow every other taskrail command down.
    from workers.dashboard import AllowedHosts, AuthConfig, LoginLink, check_bind, create_app, is_loopback, serve

    link = LoginLink.from_env()  # a demo's (it shows the secret on its own terminal); taken out before settings load
    check_port(args.port, any_free=True)
    auth = AuthConfig.from_env(public_metrics=args.public_metrics)
    check_bind(args.host, auth)  # ConfigError -> exit code RET_CONFIG, before anything is started
    hosts = AllowedHosts.for_bind(args.host, args.allowed_host)
    settings = load_settings()
    secret = None
    auth = auth.with_generated_password()
    if link is None and auth.generated and is_loopback(args.host):
        link, secret = LoginLink.new()
    app = create_app(settings, auth, secure_cookie=args.secure_cookie, allowed_hosts=hosts, login_link=link)
    serve(app, args.host, args.port, announce=lambda url: _announce(url, auth, secret))
    return RET_OK


def _announce(base_url: str, auth: AuthConfig, secret: str | None) -> None:
    """How to get in, on the terminal only, when no secret was configured."""
    from workers.dashboard import LINK_TTL_S, link_url

    if not auth.generated:
        return
    print(f"no TASKRAIL_DASHBOARD_PASSWORD or TASKRAIL_DASHBOARD_TOKEN set; password for this run: {auth.password}",
          file=sys.stderr, flush=True)  # fmt: skip
    if secret:
        print(f"log in once (single use, {LINK_TTL_S // 60} minutes, this machine only): {link_url(base_url, secret)}",
              file=sys.stderr, flush=True)  # fmt: skip
