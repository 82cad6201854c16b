"""Dramatiq for ``taskrail bench --peers``: the broker and actors, and the producer commands of peer_common.

Worker: ``dramatiq dramatiq_bench -p 2 -t N`` (N = 8, its default, or 50). Dramatiq has no bulk enqueue.
"""

from __future__ import annotations

import os

import dramatiq
import peer_common
from dramatiq.brokers.redis import RedisBroker


class Ready(dramatiq.Middleware):
    """Marks each worker process ready once it has booted, and counts every failed run."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        peer_common.mark_ready()

    def after_process_message(self, broker: dramatiq.Broker, message: object, *, result: object = None,
                              exception: BaseException | None = None) -> None:  # fmt: skip
        if exception is not None:
            peer_common.job_failed()


broker = RedisBroker(url=os.environ["REDIS_URL"])
broker.add_middleware(Ready())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", actor_name="bench_noop")
def noop() -> None:
    peer_common.noop()


@dramatiq.actor(queue_name="bench", actor_name="bench_sleep_io")
def sleep_io() -> None:
    peer_common.sleep_io()


@dramatiq.actor(queue_name="bench", actor_name="bench_record_start")
def record_start(enqueued_at: float) -> None:
    peer_common.record_start(enqueued_at)


@dramatiq.actor(queue_name="bench", actor_name="bench_fail", max_retries=0)
def fail() -> None:
    peer_common.fail()


ACTORS = {"noop": noop, "io": sleep_io, "latency": record_start, "fail": fail}


def one(kind: str, args: tuple) -> None:
    ACTORS[kind].send(*args)


if __name__ == "__main__":
    peer_common.driver(one, None)
