"""Lands a stop signal on every line of a worker's steps in turn: ``python -m tests.signal_landing QUEUE``.

A Python signal handler runs on the main thread between two bytecodes; one that asks for a lock the
interrupted code holds (``threading.Event.set()`` inside the same Event's ``wait()``, a second handler
inside the first) waits forever. A tracer raises the signal at the k-th line the step executes, for
every k, handlers' own lines included: where a handler could hang the process, this process hangs, and
the test's deadline fails it. Prints ``<step> <landings>`` per step; exits 0 when every landing returned.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import redis

from config.settings import load_settings
from workers.worker import Worker


def land_everywhere(step: Callable[[], object], reset: Callable[[], None], handled: Callable[[], bool],
                    signum: int) -> int:  # fmt: skip
    """Run ``step`` once per line it executes, with ``signum`` raised at that line; the number of runs."""
    k = 0
    while True:
        k += 1
        reset()
        seen = 0

        def tracer(frame: FrameType, event: str, arg: Any, at: int = k) -> Any:
            nonlocal seen
            if event == "line":
                seen += 1
                if seen == at:
                    signal.raise_signal(signum)
            return tracer

        sys.settrace(tracer)
        try:
            step()
        finally:
            sys.settrace(None)
        if seen < k:
            return k - 1
        assert handled(), f"the signal raised at line {k} of {step} was not handled"


def main(queue: str) -> None:
    settings = load_settings()
    worker = Worker([queue], connection=redis.Redis.from_url(settings.redis_url or "redis://"), settings=settings)
    worker._install_signals()  # SIGTERM and SIGINT: request_stop, as in `rq worker -w workers.Worker`
    worker._state = "suspended"  # the suspended wait alone, without its first write
    stop, go = worker._stop.set, worker._stop.clear
    steps: list[tuple[str, Callable[[], object], Callable[[], None]]] = [
        ("suspended-wait", worker._wait_suspended, go),  # the main thread waits on the stop flag
        ("first-stop", worker.request_stop, go),  # a second signal inside the first one's handler
        ("second-stop", worker.request_stop, stop),  # a third inside the second's
    ]
    for name, step, reset in steps:
        landings = land_everywhere(step, reset, lambda: worker.stopping, signal.SIGTERM)
        print(name, landings, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
