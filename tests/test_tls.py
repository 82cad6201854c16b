"""``rediss://``: producers and real workers reach the server over TLS.

The embedded Valkey binary is built without TLS, so a TLS-terminating proxy (Python's ``ssl``, a self-signed
certificate made by openssl) sits in front of it; clients see a real TLS server and verify its certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from config.embedded import free_port
from tasks.core.client import default_client
from tests import tasks_core
from tests.conftest import Processes, live_workers, wait_for
from tests.prereqs import require_command


class TLSProxy:
    """Accepts TLS on ``port`` and relays each connection, decrypted, to ``upstream``."""

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path) -> None:
        self.upstream, self.port, self.accepted = upstream, free_port(), 0
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> TLSProxy:
        self.thread.start()
        serve = asyncio.start_server(self._relay, "127.0.0.1", self.port, ssl=self.context)
        self.server = asyncio.run_coroutine_threadsafe(serve, self.loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    async def _shutdown(self) -> None:
        self.server.close()
        relays = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for relay in relays:
            relay.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def tls_url(redis_url: str, tmp_path: Path) -> Iterator[str]:
    openssl = require_command("openssl", "install it (apt-get install openssl) to make the TLS test's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    plain = urlsplit(redis_url)
    with TLSProxy((plain.hostname or "127.0.0.1", plain.port or 6379), cert, key) as proxy:
        yield f"rediss://127.0.0.1:{proxy.port}{plain.path}?ssl_ca_certs={cert}"
        assert proxy.accepted >= 2, "producer and worker must both have come through TLS"


def test_a_job_goes_through_rediss_end_to_end(
    tls_url: str, settings, procs: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", tls_url)
    default_client.cache_clear()  # this process's producer now speaks TLS too
    procs.worker("core", env={"REDIS_URL": tls_url, "TASKRAIL_IMPORTS": "tests.tasks_core"})
    tls = redis.Redis.from_url(tls_url)
    wait_for(lambda: live_workers(tls), 20, what="a worker registered over TLS")
    assert tasks_core.add.delay(2, 3).get(timeout=20) == 5
    with pytest.raises(redis.ConnectionError):  # the proxy speaks TLS only: a plain client is refused
        redis.Redis(host="127.0.0.1", port=urlsplit(tls_url).port, socket_timeout=5).ping()
