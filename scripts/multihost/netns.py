"""Separate hosts on one machine: a network namespace per host, joined by the userspace switch of ``wire.py``.

Each host has its own network stack (interfaces, routes, sockets) and the address ``10.218.0.<n>`` on its ``mh0``
interface; nothing reaches any other network (the namespaces have no other interface than ``lo``). Namespace names
carry this process's id, so parallel runs do not collide. Needs root (``ip netns add``); ``unavailable()`` says why not.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from config.errors import ConfigError

__all__ = ["Host", "Network", "NsConnection", "enter_netns", "unavailable"]

CLONE_NEWNET = 0x40000000
SUBNET = "10.218.0"
ROOT = Path(__file__).resolve().parents[2]
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def enter_netns(ns: str) -> Iterator[None]:
    """Run the block (this thread only) inside namespace ``ns``: sockets and TUNs made there stay there."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(own)
        os.close(own)
        os.close(target)


class NsConnection(redis.Connection):
    """A Redis connection whose socket is made inside namespace ``netns`` (and stays there): a client in this process
    that talks like a process on that host. ``redis.ConnectionPool(connection_class=NsConnection, netns=...)``."""

    def __init__(self, *, netns: str, **kwargs: Any) -> None:
        self.netns = netns
        super().__init__(**kwargs)

    def _connect(self) -> socket.socket:
        with enter_netns(self.netns):
            return super()._connect()  # type: ignore[misc,no-any-return]


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise ConfigError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip``, no /dev/net/tun), or None when they can."""
    if os.geteuid() != 0:
        return "multihost runs need root (network namespaces): run it as root, e.g. sudo make multihost"
    if not os.path.exists("/dev/net/tun"):
        return "multihost runs need /dev/net/tun (the wire between the hosts is a TUN switch)"
    probe = f"trmh{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
    except (ConfigError, FileNotFoundError) as exc:
        return f"cannot create a network namespace here ({exc}); multihost runs need `ip netns add`"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    name: str
    ns: str
    address: str


class Network:
    """Hosts in namespaces on one switch; every process started through it is stopped by ``close()``."""

    def __init__(self, names: list[str], work_dir: Path) -> None:
        tag = f"trmh{os.getpid()}"
        self.hosts = {n: Host(n, f"{tag}-{n}", f"{SUBNET}.{i + 1}") for i, n in enumerate(names)}
        self.work_dir = work_dir
        self.spec_path = work_dir / "wire.json"
        self.links: dict[str, dict[str, float]] = {n: {} for n in names}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.wire: subprocess.Popen[str] | None = None

    def open(self) -> Network:
        remove_stale()
        try:
            for host in self.hosts.values():
                _ip("netns", "add", host.ns)
            self._write_spec()
            self._start_wire()
            for host in self.hosts.values():
                _ip("-n", host.ns, "link", "set", "lo", "up")
                _ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "mh0")
                _ip("-n", host.ns, "link", "set", "mh0", "up")
        except BaseException:
            self.close()
            raise
        return self

    def _start_wire(self) -> None:
        log = open(self.work_dir / "wire.log", "w")
        self.wire = subprocess.Popen(
            [sys.executable, "-m", "scripts.multihost.wire", str(self.spec_path)], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=log, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.wire.stdout is not None
        if self.wire.stdout.readline().strip() != "ready":
            raise ConfigError(f"the wire did not start; see {self.work_dir / 'wire.log'}")

    def _write_spec(self) -> None:
        hosts = [{"ns": h.ns, "address": h.address, **self.links[h.name]} for h in self.hosts.values()]
        tmp = self.spec_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"hosts": hosts}))
        tmp.replace(self.spec_path)

    def set_link(self, name: str, delay_ms: float = 0.0, jitter_ms: float = 0.0, loss: float = 0.0) -> None:
        """One host's link to the switch, one way: a round trip between two hosts crosses both links twice."""
        self.links[name] = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss}
        self._write_spec()
        if self.wire is not None:
            self.wire.send_signal(signal.SIGHUP)

    def cut(self, name: str) -> None:
        """Pull the host's cable: its ``mh0`` goes down, so nothing goes in or out."""
        _ip("-n", self.hosts[name].ns, "link", "set", "mh0", "down")

    def restore(self, name: str) -> None:
        _ip("-n", self.hosts[name].ns, "link", "set", "mh0", "up")

    def spawn(self, name: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``args`` inside host ``name``, in its own process group (stopped by ``close()``)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.hosts[name].ns, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        return proc

    def connect(self, name: str, address: str, port: int, timeout_s: float = 5.0) -> socket.socket:
        """A TCP socket opened from inside host ``name`` (it stays there), for probes from this process."""
        with enter_netns(self.hosts[name].ns):
            return socket.create_connection((address, port), timeout=timeout_s)

    def redis_rtt_ms(self, name: str, address: str, port: int, samples: int = 50) -> float:
        """Median round trip of a Redis PING from host ``name`` to ``address:port``, in milliseconds."""
        with self.connect(name, address, port) as sock:
            times = []
            for _ in range(samples):
                started = time.perf_counter()
                sock.sendall(b"PING\r\n")
                _read_reply(sock)
                times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 3)

    def tune_rtt(self, name: str, rtt_ms: float, address: str, port: int, jitter_ms: float = 0.0) -> float:
        """Give host ``name`` a link with ``rtt_ms`` round trip to ``address:port`` (a host with no delay of its own):
        its one-way delay is corrected twice against a measured Redis PING, for the wire's own latency. Returns the
        round trip measured last."""
        delay, measured = rtt_ms / 2, 0.0
        for _ in range(3):
            self.set_link(name, delay, jitter_ms)
            time.sleep(0.05)  # the wire re-reads its links on SIGHUP
            measured = self.redis_rtt_ms(name, address, port)
            delay = max(0.0, delay + (rtt_ms - measured) / 2)
        return measured

    def client(self, name: str, port: int, host: str = "127.0.0.1", **kwargs: Any) -> redis.Redis:
        """A Redis client whose connections are made from inside host ``name``."""
        pool = redis.ConnectionPool(connection_class=NsConnection, netns=self.hosts[name].ns, host=host, port=port,
                                    **kwargs)  # fmt: skip
        return redis.Redis(connection_pool=pool)

    def close(self) -> None:
        """Stop every process started here (whole groups), the wire, and delete the namespaces."""
        started: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = [*self.procs]
        if self.wire is not None:
            started.append(self.wire)
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for host in self.hosts.values():
            _kill_namespace_pids(host.ns)
            with contextlib.suppress(ConfigError):
                _ip("netns", "del", host.ns)


def _read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(64)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        reply += chunk
    return reply


def remove_stale() -> None:
    """Namespaces an earlier run left behind (killed before its teardown: its process is gone) are removed."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    for name in (line.split()[0] for line in listed if line.startswith("trmh")):
        owner = name.removeprefix("trmh").split("-")[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            _kill_namespace_pids(name)
            with contextlib.suppress(ConfigError):
                _ip("netns", "del", name)


def _kill_namespace_pids(ns: str) -> None:
    """Anything still running inside ``ns`` (a process that left its group) is killed too."""
    found = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
