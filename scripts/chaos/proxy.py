"""A TCP proxy that loses replies on request: the server runs the command, the client never hears back.

Each client connection gets its own upstream connection and two pump threads. Dropping a reply means
reading the server's response bytes, discarding them and cutting both sides of that connection, which
is what a lost reply looks like to redis-py (``ConnectionError`` after the command was applied).
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from dataclasses import dataclass

__all__ = ["Proxy"]

CHUNK = 65536


@dataclass(eq=False)  # hashed by identity: held in a set
class _Pair:
    """One proxied connection: the client's socket and the upstream socket opened for it."""

    client: socket.socket
    upstream: socket.socket
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class Proxy:
    """Forwards ``127.0.0.1:listen_port`` to ``upstream`` (host, port); ``listen_port`` 0 picks a free port."""

    def __init__(self, listen_port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._drop_next = 0
        self._drop_fraction = 0.0
        self._random = random.Random()
        self.dropped = 0  # replies discarded so far
        self.cuts = 0  # connections cut by cut_all()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drop_next(self, count: int = 1) -> None:
        """Discard the next ``count`` replies (on whichever connections they come) and cut those connections."""
        with self._lock:
            self._drop_next += count

    def drop_fraction(self, fraction: float) -> None:
        """Discard this fraction (0 to 1) of all replies from now on; 0 stops it."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {fraction!r}")
        with self._lock:
            self._drop_fraction = fraction

    def cut_all(self) -> int:
        """Close every open connection, both sides; returns how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, set()
            self.cuts += len(pairs)
        for pair in pairs:
            pair.close()
        return len(pairs)

    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def stop(self) -> None:
        """Stop accepting and cut every connection."""
        self._stopped.set()
        with contextlib.suppress(OSError):  # wakes the accept() in progress (close alone does not, on Linux)
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut_all()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:  # the server is down (restarting): the client sees a refused connection
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair, client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, upstream, client, True), daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if replies and self._take_drop():
                    break  # the command ran; its reply is discarded and the connection cut below
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        pair.close()

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drop_next > 0:
                self._drop_next -= 1
            elif not (self._drop_fraction and self._random.random() < self._drop_fraction):
                return False
            self.dropped += 1
            return True
