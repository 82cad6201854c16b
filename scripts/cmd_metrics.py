"""``taskrail metrics --port N``: serve taskrail's Prometheus metrics over HTTP."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from prometheus_client import start_http_server

from config.connection import connect
from config.settings import check_port, load_settings
from workers.exitcodes import RET_OK
from workers.metrics import build_registry

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("metrics", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    parser.add_argument(
        "--port", type=int, default=9808, help="port to listen on (default 9808; 0: any free one, printed)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_port(args.port, any_free=True)
    conn = connect(load_settings())
    server, thread = start_http_server(args.port, addr=args.host, registry=build_registry(conn))
    port = server.server_port  # the one the system chose for --port 0
    print(f"serving taskrail metrics on http://{args.host}:{port}/metrics", flush=True)
    done = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not done.wait(1.0):
        pass
    server.shutdown()
    thread.join(timeout=5)
    return RET_OK
