"""``taskrail metrics --port N``: serve taskrail's Prometheus metrics, and each queue's load for KEDA, over HTTP.

``/metrics`` is the Prometheus text format (workers/metrics.py); ``/scale/<queue>`` is the JSON
KEDA's ``metrics-api`` trigger reads (workers/scale_load.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from config.connection import connect
from config.settings import Settings, check_port, load_settings
from tasks.core.validate import is_queue_name
from workers.exitcodes import RET_OK
from workers.metrics import build_registry
from workers.scale_load import queue_load

__all__ = ["register"]

SCALE_PATH = "/scale/"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("metrics", help="serve Prometheus metrics at http://HOST:PORT/metrics")
    parser.add_argument("--port", type=int, default=9808, help="port to listen on (default 9808)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_port(args.port)
    settings = load_settings()
    conn = connect(settings)
    server = make_server(args.host, args.port, _app(conn, settings), ThreadingWSGIServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    port = server.server_port
    print(f"serving taskrail metrics on http://{args.host}:{port}/metrics (KEDA: {SCALE_PATH}<queue>)", flush=True)
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


def _app(conn: redis.Redis, settings: Settings) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(build_registry(conn))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(SCALE_PATH):
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        queue = path.removeprefix(SCALE_PATH)
        if not is_queue_name(queue):
            return _json(start_response, "404 Not Found", {"error": f"no queue name in {path!r}: use /scale/<queue>"})
        try:
            return _json(start_response, "200 OK", queue_load(conn, settings, queue).to_json())
        except redis.RedisError as exc:  # KEDA then keeps the count (or its fallback): never a made-up 0
            return _json(start_response, "503 Service Unavailable", {"error": f"Redis: {exc}"})

    return app


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
