"""Celery's task signals, connected in a ``pool: asyncio`` worker (tests/test_asyncio_mode.py): apart from
tests/tasks_async.py, because connected signals give every job of the worker their cost."""

from __future__ import annotations

import os
from typing import Any

import redis

from tasks import signals
from tests.tasks_async import EVENTS_KEY


def _conn() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@signals.task_prerun.connect
def _prerun(sender: Any, task_id: str, **_: Any) -> None:
    _conn().rpush(EVENTS_KEY, f"prerun:{task_id}")


@signals.task_postrun.connect
def _postrun(sender: Any, task_id: str, state: str, **_: Any) -> None:
    _conn().rpush(EVENTS_KEY, f"postrun:{task_id}:{state}")
