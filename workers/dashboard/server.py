"""Serving the dashboard: the bind check (loopback unless a secret is configured) and the HTTP server."""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable
from types import FrameType

from flask import Flask
from werkzeug.serving import make_server

from config.errors import ConfigError
from workers.dashboard.auth import PASSWORD_ENV, TOKEN_ENV, AuthConfig
from workers.waker import Waker

__all__ = ["check_bind", "is_loopback", "serve"]

log = logging.getLogger("taskrail.dashboard")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: AuthConfig) -> None:
    """Refuse to listen beyond this machine unless the operator configured a password or token.

    Raises:
        ConfigError: ``host`` is not a loopback address and no secret is set.
    """
    if not is_loopback(host) and not auth.configured:
        raise ConfigError(
            f"refusing to serve the dashboard on {host}: anyone who can reach it could run and delete jobs. "
            f"Set {PASSWORD_ENV} or {TOKEN_ENV} (a long random secret), or bind 127.0.0.1"
        )


def serve(
    app: Flask,
    host: str,
    port: int,
    ready: threading.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` with threads until SIGTERM or SIGINT; ``announce`` gets the base URL once it listens."""
    server = make_server(host, port, app, threaded=True)
    signalled: deque[int] = deque()
    waker = Waker()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No lock here, so no log and no Thread.start(): the main thread, serving, may hold threading's
        # own lock (starting a request's thread) where the handler runs. A waiting thread does the rest.
        signalled.append(signum)
        waker.set()

    def stop_on_signal() -> None:
        waker.ready(None)
        log.info("signal %s: stopping the dashboard", signalled[0] if signalled else "?")
        server.shutdown()

    threading.Thread(target=stop_on_signal, name="taskrail-dashboard-stop", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    base_url = f"http://{host}:{server.server_port}"
    print(f"taskrail dashboard on {base_url}/", file=sys.stderr, flush=True)
    if announce is not None:
        announce(base_url)
    if ready is not None:
        ready.set()
    server.serve_forever()
