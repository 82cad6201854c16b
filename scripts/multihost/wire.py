"""The wire between the hosts of a multihost run: a userspace IP switch with per-link delay, jitter and loss.

This machine's kernel has no ``sch_netem`` (``tc qdisc ... netem`` says "Specified qdisc kind is unknown") and no
netfilter tools, so impairment cannot be set in the kernel. Instead this process opens a TUN interface (``mh0``) in
every host's network namespace and carries real IP packets between them: a packet a host's kernel sends to another
host's address is read here, dropped with the links' loss probability, held for the links' one-way delay (plus a
uniform jitter) and written into the destination's TUN, whose kernel receives it. TCP on both ends sees real delay
and real loss (and retransmits). Packets of one host pair keep their order (jitter never reorders, like netem with a
rate). A host whose ``mh0`` is down (``ip link set mh0 down``: a cut link) receives nothing; its kernel sends nothing.

Run as ``python -m scripts.multihost.wire SPEC_JSON``; the spec file lists the hosts (``ns``, ``address``) and their
links (``delay_ms`` one way, ``jitter_ms``, ``loss`` from 0 to 1); SIGHUP re-reads the links. It prints ``ready``
once every TUN is open and runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.multihost.netns import enter_netns

__all__ = ["Link", "main"]

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
DEVICE = "mh0"
READ_BATCH = 64  # packets read from one TUN before looking at the others


@dataclass(frozen=True)
class Link:
    """One host's link to the switch: what a packet crossing it suffers, one way."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0


def open_tun(ns: str) -> int:
    """A non-blocking TUN interface ``mh0`` created inside namespace ``ns``; the fd stays in this process."""
    with enter_netns(ns):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", DEVICE.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Switch:
    """Routes IPv4 packets by destination address between the TUNs, through a delay line."""

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path
        spec = json.loads(spec_path.read_text())
        self.fds = [open_tun(h["ns"]) for h in spec["hosts"]]
        self.by_address = {socket.inet_aton(h["address"]): i for i, h in enumerate(spec["hosts"])}
        self.links = [Link() for _ in self.fds]
        self.reload()
        self.pending: list[tuple[float, int, int, bytes]] = []  # (release time, sequence, destination, packet)
        self.last_release: dict[tuple[int, int], float] = {}
        self.sequence = 0

    def reload(self) -> None:
        hosts = json.loads(self.spec_path.read_text())["hosts"]
        self.links = [Link(h.get("delay_ms", 0.0), h.get("jitter_ms", 0.0), h.get("loss", 0.0)) for h in hosts]

    def route(self, source: int, packet: bytes, now: float) -> None:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return  # IPv4 only (the kernel's IPv6 router solicitations go nowhere)
        dest = self.by_address.get(packet[16:20])
        if dest is None:
            return
        out, back = self.links[source], self.links[dest]
        if random.random() < out.loss or random.random() < back.loss:
            return
        jitter = out.jitter_ms + back.jitter_ms
        delay_s = max(0.0, out.delay_ms + back.delay_ms + random.uniform(-jitter, jitter)) / 1000
        release = max(now + delay_s, self.last_release.get((source, dest), 0.0))
        self.last_release[(source, dest)] = release
        self.sequence += 1
        heapq.heappush(self.pending, (release, self.sequence, dest, packet))

    def deliver(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, _, dest, packet = heapq.heappop(self.pending)
            with contextlib.suppress(OSError):  # the destination's link is down: lost, as on a cut cable
                os.write(self.fds[dest], packet)

    def read(self, fd: int, source: int) -> None:
        for _ in range(READ_BATCH):
            try:
                packet = os.read(fd, 65535)
            except (BlockingIOError, OSError):
                return
            self.route(source, packet, time.monotonic())

    def run(self, wake_fd: int) -> None:
        index = {fd: i for i, fd in enumerate(self.fds)}
        while True:
            timeout = max(0.0, self.pending[0][0] - time.monotonic()) if self.pending else None
            ready, _, _ = select.select([*self.fds, wake_fd], [], [], timeout)  # select: microsecond timeouts
            for fd in ready:
                if fd == wake_fd:
                    os.read(wake_fd, 512)
                    self.reload()
                else:
                    self.read(fd, index[fd])
            self.deliver(time.monotonic())


def main(argv: list[str]) -> int:
    switch = Switch(Path(argv[0]))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGHUP, lambda *_: None)  # the wakeup fd tells run() to re-read the links
    print("ready", flush=True)
    switch.run(wake_r)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
