"""``taskrail server start|stop|status``: the embedded Redis-compatible server."""

from __future__ import annotations

import argparse

from config.embedded import ensure_server, running_server, stop_server
from config.settings import load_settings
from config.urls import redact_url
from workers.exitcodes import RET_ERROR, RET_OK

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("server", help="start, stop or show the embedded server")
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings.redis_url and args.action != "status":
        print(f"REDIS_URL is set ({redact_url(settings.redis_url)}); the embedded server is not used")
        return RET_OK
    if args.action == "start":
        server = ensure_server(settings.data_dir, settings.server_file)
        print(f"embedded server running at {redact_url(server.url)} (pid {server.pid}, data in {server.data_dir}); "
              f"every taskrail command and producer of this user without REDIS_URL uses it "
              f"(named by {settings.server_file})")  # fmt: skip
        return RET_OK
    if args.action == "stop":
        stopped = stop_server(settings.server_file)
        print("embedded server stopped" if stopped else "no embedded server was running")
        return RET_OK
    if settings.redis_url:
        print(f"using REDIS_URL {redact_url(settings.redis_url)}")
        return RET_OK
    state = running_server(settings.server_file)
    if state:
        print(f"embedded server running at {redact_url(state.url)} (pid {state.pid}, data in {state.data_dir})")
        return RET_OK
    print(f"no embedded server running (none named by {settings.server_file}); start one with: taskrail server start")
    return RET_ERROR
