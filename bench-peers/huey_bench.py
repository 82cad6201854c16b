"""Huey for ``taskrail bench --peers``: the Redis-backed Huey and its tasks, and the producer commands of peer_common.

Worker: ``huey_consumer huey_bench.huey -k process -w 2`` or ``-k thread -w 50``. Huey has no bulk enqueue.
"""

from __future__ import annotations

import os

import peer_common
from huey import RedisHuey, signals

huey = RedisHuey("bench", url=os.environ["REDIS_URL"], results=False)


@huey.task(name="bench.noop")
def noop() -> None:
    peer_common.noop()


@huey.task(name="bench.sleep_io")
def sleep_io() -> None:
    peer_common.sleep_io()


@huey.task(name="bench.record_start")
def record_start(enqueued_at: float) -> None:
    peer_common.record_start(enqueued_at)


@huey.task(name="bench.fail")
def fail() -> None:
    peer_common.fail()


TASKS = {"noop": noop, "io": sleep_io, "latency": record_start, "fail": fail}


@huey.on_startup()
def _ready() -> None:
    peer_common.mark_ready()


@huey.signal(signals.SIGNAL_ERROR)
def _failed(signal: str, task: object, exc: BaseException | None = None) -> None:
    peer_common.job_failed()


def one(kind: str, args: tuple) -> None:
    TASKS[kind](*args)


if __name__ == "__main__":  # enqueue through the module's own tasks: run as __main__, their names would differ
    import huey_bench

    peer_common.driver(huey_bench.one, None)
