"""Many hosts on one machine: a server, worker hosts and a producer, each in its own network namespace.

The namespaces are joined by scripts/multihost/wire.py (a userspace switch with per-link delay, jitter and loss; this
kernel has no netem). The real server runs in ``server``, real ``rq worker -w workers.Worker`` processes in
``worker-1..k``, producers in ``producer``. The test reads the database from inside ``server`` (loopback, never
impaired). Everything is torn down whatever happens. These tests carry the ``multihost`` mark: ``make test`` leaves
them out, ``make multihost`` (``taskrail multihost``) runs them as root. Without root they skip, saying so.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import pytest
import redis

from config.embedded import find_server_binary
from scripts.multihost.netns import Network, unavailable
from tests.conftest import BIN, ROOT, wait_for

PORT = 6379
QUEUE = "mh"
# Recovery is sized from these: a partitioned worker's claims go back after the TTL and one sweep.
FAST = {"TASKRAIL_HEARTBEAT_TTL_S": "3", "TASKRAIL_HEARTBEAT_INTERVAL_S": "0.5"}
REPORT_ENV = "TASKRAIL_MULTIHOST_REPORT"  # where each scenario appends its row (taskrail multihost reads it)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.multihost)


@dataclass
class Tally:
    """What happened to a set of jobs: lost ones, ones with more than one completion record, per-host counts."""

    jobs: int
    lost: list[str] = field(default_factory=list)
    double: list[str] = field(default_factory=list)
    per_host: Counter[str] = field(default_factory=Counter)


class Cluster:
    """The hosts, the server in ``server``, and helpers to start workers and producers on the others."""

    def __init__(self, net: Network, work_dir: Path, url: str | None = None) -> None:
        self.net = net
        self.work_dir = work_dir
        self.server_address = net.hosts["server"].address if "server" in net.hosts else ""
        self.url = url or f"redis://{self.server_address}:{PORT}/0"
        self.conn: redis.Redis | None = None  # type: ignore[assignment]
        self.workers: dict[str, Popen[bytes]] = {}

    def start_server(self) -> None:
        self.conn = start_server(self.net, "server", self.work_dir)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKRAIL_")}
        environ.update(
            REDIS_URL=self.url, TASKRAIL_IMPORTS="tests.multihost.tasks", PYTHONUNBUFFERED="1",
            TASKRAIL_DATA_DIR=str(self.work_dir / "data"), TASKRAIL_SERVER_FILE=str(self.work_dir / "server.json"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        )  # fmt: skip
        environ.update(extra or {})
        return environ

    def start_worker(self, host: str, env: dict[str, str] | None = None) -> str:
        """A real ``rq worker -w workers.Worker`` on host ``host``, named ``mh-<host>``; returns the name."""
        name = f"mh-{host}"
        args = [str(BIN / "rq"), "worker", "-w", "workers.Worker", "-c", "config.rq", "--name", name, QUEUE]
        self.workers[name] = self.net.spawn(host, args, self.env(env), self.work_dir / f"{name}.log")
        return name

    def wait_live(self, names: list[str], timeout_s: float = 60) -> None:
        def live() -> bool:
            return all(self.conn.exists(f"taskrail:hb:{n}") for n in names)

        wait_for(live, timeout_s, 0.1, what=f"heartbeats of {', '.join(names)}")

    def produce(self, mode: str, n: int, ms: float = 0.0, seconds: float = 0.0) -> tuple[Popen[bytes], Path]:
        """Start the producer program (tests/multihost/produce.py) on host ``producer``; returns it and its output."""
        out = self.work_dir / f"produce-{mode}-{time.monotonic_ns()}.json"
        args = [sys.executable, "-m", "tests.multihost.produce", str(out), mode, str(n), str(ms), str(seconds)]
        return self.net.spawn("producer", args, self.env(), self.work_dir / "producer.log"), out

    def map_ids(self, n: int, ms: float = 0.0, timeout_s: float = 120) -> list[str]:
        """Enqueue ``n`` jobs from the producer host; returns their ids."""
        proc, out = self.produce("map", n, ms)
        wait_for(lambda: proc.poll() is not None, timeout_s, 0.1, what=f"the producer to enqueue {n} jobs")
        assert proc.returncode == 0, (self.work_dir / "producer.log").read_text()
        return list(json.loads(out.read_text()))

    def set_rtt(self, hosts: list[str], rtt_ms: float, jitter_ms: float = 0.0) -> dict[str, float]:
        """Give each host a link with ``rtt_ms`` round trip to the server; returns the measured round trips."""
        return {h: self.net.tune_rtt(h, rtt_ms, self.server_address, PORT, jitter_ms) for h in hosts}

    def finished(self) -> int:
        return int(self.conn.zcard(f"rq:finished:{QUEUE}"))

    def wait_finished(self, total: int, timeout_s: float) -> float:
        """Wait until ``total`` jobs have finished; returns when (monotonic)."""
        wait_for(lambda: self.finished() >= total, timeout_s, 0.1, what=f"{total} jobs to finish ({self.finished()})")
        return time.monotonic()

    def tally(self, ids: list[str]) -> Tally:
        """Every job's completion records (RQ's result stream, type 1 = success) and the host that made them."""
        result = Tally(len(ids))
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            with self.conn.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.xrange(f"rq:results:{job_id}")
                streams = pipe.execute()
            for job_id, entries in zip(chunk, streams, strict=True):
                done = [e for _, e in entries if e.get(b"type") == b"1"]
                if not done:
                    result.lost.append(job_id)
                elif len(done) > 1:
                    result.double.append(job_id)
                for entry in done[:1]:
                    result.per_host[entry[b"worker_name"].decode()] += 1
        return result

    def held_by(self, name: str) -> list[str]:
        """The job ids worker ``name`` holds claims on."""
        return [k.decode() for k in self.conn.hkeys(f"taskrail:claims:{name}")]

    def log(self, name: str) -> str:
        return (self.work_dir / f"{name}.log").read_text(errors="replace")


def observer(net: Network, host: str, port: int = PORT) -> redis.Redis:
    """A client on the server of host ``host``, over that host's loopback (never impaired, never cut)."""
    return net.client(host, port, socket_timeout=5)


def start_server(net: Network, host: str, work_dir: Path, *extra: str) -> redis.Redis:
    """The real server on host ``host``, port 6379 on every address; returns an observer client once it answers."""
    data = work_dir / host
    data.mkdir()
    args = [str(find_server_binary()), "--port", str(PORT), "--bind", "0.0.0.0", "--protected-mode", "no",
            "--dir", str(data), "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction", *extra]  # fmt: skip
    net.spawn(host, args, {}, work_dir / f"{host}.log")
    conn = observer(net, host)
    wait_for(lambda: _pings(conn), 20, 0.05, what=f"the server on {host}")
    return conn


def _pings(conn: redis.Redis) -> bool:
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False


def record(scenario: str, tally: Tally, recovery_s: float | None, throughput: float | None, **extra: object) -> None:
    """Print the scenario's row, and append it to $TASKRAIL_MULTIHOST_REPORT when set (taskrail multihost)."""
    row = {"scenario": scenario, "jobs": tally.jobs, "lost": len(tally.lost), "double_completed": len(tally.double),
           "recovery_s": recovery_s, "throughput": throughput, **extra}  # fmt: skip
    print(json.dumps(row))
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = unavailable()
    if reason:
        pytest.skip(reason)


def open_cluster(tmp_path: Path, workers: int) -> Iterator[Cluster]:
    names = ["server", *[f"worker-{i}" for i in range(1, workers + 1)], "producer"]
    net = Network(names, tmp_path).open()
    try:
        cluster = Cluster(net, tmp_path)
        cluster.start_server()
        yield cluster
    finally:
        net.close()


@pytest.fixture
def cluster(netns_ok: None, tmp_path: Path) -> Iterator[Cluster]:
    """Three worker hosts, a producer and the server, each its own namespace; no impairment until a test sets one."""
    yield from open_cluster(tmp_path, 3)
