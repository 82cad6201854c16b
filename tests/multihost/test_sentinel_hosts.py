"""Sentinel across hosts (issue 18, scenario 5): the primary, its replica and three sentinels each on a host of their
own; the primary's host is cut off; workers and a producer on other hosts follow the failover and every job completes
once. The loopback version of this test is tests/test_sentinel.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from scripts.multihost.netns import Network
from tests.conftest import wait_for
from tests.multihost.conftest import FAST, PORT, Cluster, observer, record, start_server

pytestmark = pytest.mark.multihost  # make test leaves these out; make multihost runs them (as root)

MASTER = "mymaster"
SENTINEL_PORT = 26379
SENTINELS = ["sentinel-1", "sentinel-2", "sentinel-3"]
HOSTS = ["primary", "replica", *SENTINELS, "worker-1", "worker-2", "producer"]


@pytest.fixture
def sentinel_hosts(netns_ok: None, tmp_path: Path) -> Iterator[Cluster]:
    net = Network(HOSTS, tmp_path).open()
    try:
        for host in HOSTS:
            net.set_link(host, 0.25)  # 1 ms round trip between any two hosts
        primary = net.hosts["primary"].address
        primary_conn = start_server(net, "primary", tmp_path)
        replica_conn = start_server(net, "replica", tmp_path, "--replicaof", primary, str(PORT))
        wait_for(lambda: _replica_online(primary_conn), 30, 0.1, what="the replica to sync")
        for host in SENTINELS:
            conf = tmp_path / f"{host}.conf"
            conf.write_text(
                f"port {SENTINEL_PORT}\nbind 0.0.0.0\nprotected-mode no\ndir {tmp_path}\n"
                f"sentinel monitor {MASTER} {primary} {PORT} 2\nsentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\nsentinel parallel-syncs {MASTER} 1\n"
            )
            net.spawn(host, [_server_binary(), str(conf), "--sentinel"], {}, tmp_path / f"{host}.log")
        watchers = [observer(net, host, SENTINEL_PORT) for host in SENTINELS]
        wait_for(lambda: all(_discovered(w) for w in watchers), 40, 0.2, what="the sentinels to find each other")
        addresses = ",".join(f"{net.hosts[h].address}:{SENTINEL_PORT}" for h in SENTINELS)
        cluster = Cluster(net, tmp_path, f"redis+sentinel://{addresses}/{MASTER}/0")
        cluster.conn = primary_conn
        cluster.replica_conn = replica_conn  # type: ignore[attr-defined]
        yield cluster
    finally:
        net.close()


def _server_binary() -> str:
    from config.embedded import find_server_binary

    return str(find_server_binary())


def _replica_online(primary: redis.Redis) -> bool:
    try:
        replica = primary.info("replication").get("slave0") or {}
    except redis.RedisError:
        return False
    return isinstance(replica, dict) and replica.get("state") == "online"


def _discovered(sentinel: redis.Redis) -> bool:
    try:
        state = sentinel.sentinel_master(MASTER)
    except redis.RedisError:
        return False
    return int(state["num-slaves"]) >= 1 and int(state["num-other-sentinels"]) >= 2


def _promoted(replica: redis.Redis) -> bool:
    try:
        return replica.info("replication")["role"] == "master"
    except redis.RedisError:
        return False


def test_workers_and_producers_on_other_hosts_follow_a_failover(sentinel_hosts: Cluster) -> None:
    cluster = sentinel_hosts
    names = [cluster.start_worker(host, FAST) for host in ("worker-1", "worker-2")]
    cluster.wait_live(names)
    before = cluster.map_ids(600, ms=10)  # about 3 s of work for two hosts
    assert cluster.conn.execute_command("WAIT", 1, 5000) >= 1, "the replica did not catch up"
    cluster.net.cut("primary")
    cut_at = time.monotonic()
    replica: redis.Redis = cluster.replica_conn  # type: ignore[attr-defined]
    wait_for(lambda: _promoted(replica), 60, 0.1, what="the sentinels to promote the replica")
    promoted_s = round(time.monotonic() - cut_at, 1)
    cluster.conn = replica
    done_then = cluster.finished()
    wait_for(lambda: cluster.finished() > done_then, 60, 0.1, what="workers to complete jobs on the new primary")
    resumed_s = round(time.monotonic() - cut_at, 1)
    after = cluster.map_ids(200, ms=10)  # a producer host that starts after the failover finds the new primary
    cluster.wait_finished(len(before) + len(after), 180)
    tally = cluster.tally(before + after)
    assert not tally.lost and not tally.double
    assert all(cluster.workers[n].poll() is None for n in names), "a worker exited in the failover"
    record("5. sentinel: primary's host cut", tally, resumed_s, None, promoted_s=promoted_s)
