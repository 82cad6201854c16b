"""Celery for ``taskrail bench --peers``: the app and its tasks, and the producer commands of peer_common.

Worker: ``celery -A celery_bench worker -Q bench``. Defaults as shipped: JSON, no result backend.
"""

from __future__ import annotations

import os

import peer_common
from celery import Celery, group
from celery.signals import task_failure, worker_ready

app = Celery("celery_bench", broker=os.environ["REDIS_URL"])
app.conf.update(task_default_queue="bench", task_ignore_result=True, worker_hijack_root_logger=False)


@app.task(name="bench.noop")
def noop() -> None:
    peer_common.noop()


@app.task(name="bench.sleep_io")
def sleep_io() -> None:
    peer_common.sleep_io()


@app.task(name="bench.record_start")
def record_start(enqueued_at: float) -> None:
    peer_common.record_start(enqueued_at)


@app.task(name="bench.fail")
def fail() -> None:
    peer_common.fail()


TASKS = {"noop": noop, "io": sleep_io, "latency": record_start, "fail": fail}


@worker_ready.connect
def _ready(**_: object) -> None:
    peer_common.mark_ready()


@task_failure.connect
def _failed(**_: object) -> None:
    peer_common.job_failed()


def one(kind: str, args: tuple) -> None:
    TASKS[kind].delay(*args)


def bulk(kind: str, n: int) -> None:
    group(TASKS[kind].s() for _ in range(n)).apply_async()


if __name__ == "__main__":
    peer_common.driver(one, bulk)
