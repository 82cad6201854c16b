"""The event loop of ``pool: asyncio`` (workers/aio_selector.py): timed waits go to ``select()`` unrounded, events
are still reported, and a descriptor ``select()`` cannot take falls back to epoll's own wait."""

from __future__ import annotations

import asyncio
import select
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from workers import aio_selector

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="epoll is Linux's")


@pytest.fixture
def selector() -> Iterator[Any]:
    chosen = aio_selector.PreciseSelector()
    yield chosen
    chosen.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


@pytest.fixture
def timeouts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeouts ``select.select`` is called with (it still waits as asked)."""
    seen: list[float] = []
    real = select.select

    def spy(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
        seen.append(timeout)  # type: ignore[arg-type]
        return real(rlist, wlist, xlist, timeout)

    monkeypatch.setattr(select, "select", spy)
    return seen


def test_a_timed_wait_is_handed_to_select_to_the_microsecond(selector: Any, timeouts: list[float]) -> None:
    started = time.monotonic()
    assert selector.select(0.0023) == []
    assert time.monotonic() - started >= 0.0023  # nothing ready: the whole wait, not less
    assert timeouts == [0.0023]  # epoll_wait would have waited 3 ms


def test_a_ready_descriptor_is_reported_with_its_events(selector: Any, pair: tuple[socket.socket, socket.socket],
                                                        timeouts: list[float]) -> None:  # fmt: skip
    left, right = pair
    selector.register(left, aio_selector.selectors.EVENT_READ, "data")
    right.send(b"x")
    [(key, events)] = selector.select(30)  # returns as soon as the byte is there
    assert (key.fileobj, key.data, events) == (left, "data", aio_selector.selectors.EVENT_READ)
    assert timeouts == [30]
    assert selector.select(0) == [(key, events)]  # a poll without waiting goes to epoll alone
    assert selector.select(None) == [(key, events)]
    assert timeouts == [30]


def test_a_descriptor_past_fd_setsize_falls_back_to_epolls_wait(selector: Any, pair: tuple[socket.socket, socket.socket],
                                                                timeouts: list[float],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(aio_selector, "FD_SETSIZE", selector.fileno())  # as if the epoll fd were numbered 1024
    left, right = pair
    selector.register(left, aio_selector.selectors.EVENT_READ)
    assert selector.select(0.001) == []
    right.send(b"x")
    assert [key.fileobj for key, _ in selector.select(30)] == [left]
    assert timeouts == []  # select() never saw the descriptor it cannot take


def test_the_worker_loop_runs_timers_and_io_on_the_precise_selector(pair: tuple[socket.socket, socket.socket]) -> None:
    loop = aio_selector.new_event_loop()
    left, right = pair
    left.setblocking(False)

    async def main() -> tuple[bytes, list[str]]:
        order: list[str] = []
        loop.call_later(0.0005, order.append, "timer")
        await asyncio.sleep(0.002)
        loop.call_later(0.001, right.send, b"ping")
        return await loop.sock_recv(left, 4), order

    try:
        assert isinstance(loop._selector, aio_selector.PreciseSelector)  # type: ignore[attr-defined]
        assert loop.run_until_complete(main()) == (b"ping", ["timer"])
    finally:
        loop.close()
