"""Sentinel URLs, and a real failover: a primary, a replica and three sentinels on loopback."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from config import ConfigError, load_settings
from config.connection import connect
from config.embedded import find_server_binary, free_port
from config.sentinel import is_sentinel_url, parse_sentinel_url, rq_sentinel_settings, sentinel_client
from tasks.core.client import default_client
from tests.conftest import Processes, live_workers, wait_for

MASTER = "mymaster"

# ---- parsing ------------------------------------------------------------------------------------


def test_parses_hosts_primary_name_and_db() -> None:
    url = parse_sentinel_url("redis+sentinel://s1:26379,s2:26380,s3/jobs/2")
    assert url.instances == (("s1", 26379), ("s2", 26380), ("s3", 26379))
    assert (url.master_name, url.db, url.password, url.ssl) == ("jobs", 2, None, False)


def test_parses_credentials_tls_and_options() -> None:
    url = parse_sentinel_url("rediss+sentinel://app:p%40ss@[::1]:26379/jobs?sentinel_password=sp&socket_timeout=3")
    assert url.instances == (("::1", 26379),) and url.ssl
    assert (url.username, url.password, url.sentinel_password, url.socket_timeout_s) == ("app", "p@ss", "sp", 3.0)
    assert url.db == 0


def test_recognises_only_sentinel_schemes() -> None:
    assert is_sentinel_url("redis+sentinel://h/m") and is_sentinel_url("REDISS+SENTINEL://h/m")
    assert not is_sentinel_url("redis://h:6379/0") and not is_sentinel_url(None)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "name the primary"),
        ("redis+sentinel:///mymaster", "at least one sentinel"),
        ("redis+sentinel://s1:port/mymaster", "'s1:port' must be host or host:port"),
        ("redis+sentinel://s1:0/mymaster", "port from 1 to 65535"),
        ("redis+sentinel://s1/mymaster/zero", "must be a number, got 'zero'"),
        ("redis+sentinel://s1/mymaster/0/extra", "expected /primary-name[/db]"),
        ("redis+sentinel://s1/mymaster?timeout=1", "unknown option 'timeout'"),
        ("redis://s1/mymaster", "scheme must be one of"),
    ],
)
def test_malformed_url_says_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"expected e\.g\. redis\+sentinel://") as info:
        parse_sentinel_url(url)
    assert says in str(info.value)


def test_error_message_hides_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_sentinel_url("redis+sentinel://app:hunter2@s1:x/mymaster")
    # The credentials go; a host part that is no host list (s1:x) is hidden in the URL too, but the
    # message still names the bad address so the user can fix it.
    message = str(info.value)
    assert "hunter2" not in message and "app" not in message
    assert "redis+sentinel://***@***/mymaster" in message and "sentinel address 's1:x'" in message


def test_rq_settings_carry_everything_rq_needs() -> None:
    rq = rq_sentinel_settings(parse_sentinel_url("redis+sentinel://:pw@s1:1,s2:2/jobs/3"))
    assert rq["INSTANCES"] == [["s1", 1], ["s2", 2]] and rq["MASTER_NAME"] == "jobs" and rq["DB"] == 3
    assert rq["PASSWORD"] == "pw" and rq["SOCKET_TIMEOUT"] == 5.0


def test_rq_settings_module_uses_sentinel_for_a_sentinel_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis+sentinel://s1:26379/jobs/1")
    sys.modules.pop("config.rq", None)
    try:
        module = importlib.import_module("config.rq")
        assert not hasattr(module, "REDIS_URL")
        assert module.SENTINEL["MASTER_NAME"] == "jobs" and module.SENTINEL["DB"] == 1
    finally:
        sys.modules.pop("config.rq", None)


# ---- a real sentinel set ------------------------------------------------------------------------


@dataclass(frozen=True)
class SentinelSet:
    """A primary, its replica and three sentinels; ``url`` is the ``redis+sentinel://`` URL."""

    url: str
    primary_port: int
    replica_port: int
    primary: subprocess.Popen[bytes]


def _start(args: list[str], log: Path, started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    started.append(proc)
    return proc


def _server_args(binary: Path, port: int, workdir: Path) -> list[str]:
    workdir.mkdir()
    return [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
            "--appendonly", "no", "--maxmemory-policy", "noeviction", "--repl-diskless-sync-delay", "0"]  # fmt: skip


def _sentinel_config(path: Path, port: int, primary_port: int) -> Path:
    path.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {path.parent}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 10000\n"
        f"sentinel parallel-syncs {MASTER} 1\n"
    )
    return path


def _replica_online(primary_port: int) -> bool:
    try:
        with redis.Redis(port=primary_port, socket_timeout=1) as primary:
            replica = primary.info("replication").get("slave0") or {}
    except redis.RedisError:
        return False
    return isinstance(replica, dict) and replica.get("state") == "online"


def _discovered(port: int) -> bool:
    """True once this sentinel knows the replica and both other sentinels (failover needs them)."""
    try:
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as sentinel:
            state = sentinel.sentinel_master(MASTER)
    except redis.RedisError:
        return False
    return int(state["num-slaves"]) >= 1 and int(state["num-other-sentinels"]) >= 2


@pytest.fixture
def sentinel_set(tmp_path: Path) -> Iterator[SentinelSet]:
    binary = find_server_binary()
    started: list[subprocess.Popen[bytes]] = []
    primary_port, replica_port = free_port(), free_port()
    sentinel_ports = [free_port() for _ in range(3)]
    try:
        primary = _start(_server_args(binary, primary_port, tmp_path / "primary"), tmp_path / "primary.log", started)
        replica_args = _server_args(binary, replica_port, tmp_path / "replica")
        _start([*replica_args, "--replicaof", "127.0.0.1", str(primary_port)], tmp_path / "replica.log", started)
        # Sentinels read the primary's INFO on connecting, then only every 10 s: start them once the
        # replica is in sync, so the first INFO already shows it.
        wait_for(lambda: _replica_online(primary_port), 20, 0.05, what="the replica to sync")
        for i, port in enumerate(sentinel_ports):
            conf = _sentinel_config(tmp_path / f"sentinel{i}.conf", port, primary_port)
            _start([str(binary), str(conf), "--sentinel"], tmp_path / f"sentinel{i}.log", started)
        wait_for(lambda: all(_discovered(p) for p in sentinel_ports), 20, 0.1, what="sentinels to discover each other")
        hosts = ",".join(f"127.0.0.1:{p}" for p in sentinel_ports)
        yield SentinelSet(f"redis+sentinel://{hosts}/{MASTER}/0", primary_port, replica_port, primary)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
        for proc in started:
            proc.wait(timeout=10)


def _wait_replicated(client: redis.Redis) -> None:
    """Block until the replica has every write so far, so the failover loses nothing."""
    wait_for(lambda: client.execute_command("WAIT", 1, 1000) >= 1, 10, what="the replica to catch up")


def _kill_primary_and_wait_for_promotion(cluster: SentinelSet) -> None:
    os.kill(cluster.primary.pid, signal.SIGKILL)
    cluster.primary.wait(timeout=10)

    def promoted() -> bool:
        try:
            with redis.Redis(port=cluster.replica_port, socket_timeout=1) as replica:
                return replica.info("replication")["role"] == "master"
        except redis.RedisError:
            return False

    wait_for(promoted, 30, 0.1, what="the sentinels to promote the replica")


def test_connect_follows_a_failover(sentinel_set: SentinelSet) -> None:
    client = connect(load_settings({"REDIS_URL": sentinel_set.url}))
    assert client.connection_pool.service_name == MASTER
    client.set("before", "1")
    assert client.connection_pool.get_master_address()[1] == sentinel_set.primary_port
    _wait_replicated(client)
    _kill_primary_and_wait_for_promotion(sentinel_set)

    def write_after() -> bool:
        try:
            return bool(client.set("after", "2"))
        except redis.ConnectionError:  # the sentinels may still name the dead primary for a moment
            return False

    wait_for(write_after, 30, 0.1, what="a write through the sentinel client after the failover")
    assert client.get("before") == b"1" and client.get("after") == b"2"
    assert client.connection_pool.get_master_address()[1] == sentinel_set.replica_port


TASKS = """
import time
from tasks import task

@task(queue="failover")
def slow_double(x):
    time.sleep(0.05)
    return 2 * x
"""


def test_jobs_complete_when_the_primary_dies(
    sentinel_set: SentinelSet, procs: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "failover_tasks.py").write_text(TASKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REDIS_URL", sentinel_set.url)
    monkeypatch.setenv("TASKRAIL_DATA_DIR", str(tmp_path / "data"))
    default_client.cache_clear()  # the producer in this process talks to the sentinel set
    tasks_module = importlib.import_module("failover_tasks")
    env = {
        "REDIS_URL": sentinel_set.url,
        "TASKRAIL_IMPORTS": "failover_tasks",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), procs.env["PYTHONPATH"]]),
    }
    for i in range(2):
        procs.worker("failover", name=f"failover-{i}", env=env)
    conn = sentinel_client(sentinel_set.url)
    try:
        wait_for(lambda: len(live_workers(conn)) == 2, 20, what="two worker heartbeats through the sentinels")
        before = [tasks_module.slow_double.delay(i) for i in range(40)]  # about one second of work
        _wait_replicated(conn)
        _kill_primary_and_wait_for_promotion(sentinel_set)
        after = [_enqueue_through_failover(tasks_module.slow_double, 100 + i) for i in range(10)]
        assert [r.get(timeout=30) for r in before] == [2 * i for i in range(40)]
        assert [r.get(timeout=30) for r in after] == [2 * (100 + i) for i in range(10)]
        assert all(proc.poll() is None for proc in procs.procs), "a worker died in the failover"
    finally:
        default_client.cache_clear()
        sys.modules.pop("failover_tasks", None)


def _enqueue_through_failover(task: object, arg: int) -> object:
    deadline = time.monotonic() + 30
    while True:
        try:
            return task.delay(arg)  # type: ignore[attr-defined]
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
