"""``taskrail dashboard [--host H] [--port P]``: the web dashboard, API and metrics."""

from __future__ import annotations

import argparse
import sys

from config.settings import check_port, load_settings
from workers.exitcodes import RET_OK

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
    from workers.dashboard import AllowedHosts, AuthConfig, check_bind, create_app, serve

    check_port(args.port, any_free=True)
    auth = AuthConfig.from_env(public_metrics=args.public_metrics)
    check_bind(args.host, auth)  # ConfigError -> exit code RET_CONFIG, before anything is started
    hosts = AllowedHosts.for_bind(args.host, args.allowed_host)
    settings = load_settings()
    auth = auth.with_generated_password()
    if auth.generated:
        print(f"no TASKRAIL_DASHBOARD_PASSWORD or TASKRAIL_DASHBOARD_TOKEN set; password for this run: {auth.password}",
              file=sys.stderr, flush=True)  # fmt: skip
    app = create_app(settings, auth, secure_cookie=args.secure_cookie, allowed_hosts=hosts)
    serve(app, args.host, args.port)
    return RET_OK
