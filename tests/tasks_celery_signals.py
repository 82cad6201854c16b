"""Signal receivers a worker imports (TASKRAIL_IMPORTS=tests.tasks_celery,tests.tasks_celery_signals); each
records its call in Redis for the test to read."""

from __future__ import annotations

import json
import os
from typing import Any

import redis

from tasks import signals


def _record(*values: Any) -> None:
    redis.Redis.from_url(os.environ["REDIS_URL"]).rpush("signals", json.dumps(values))


@signals.task_prerun.connect
def prerun(sender: Any, task_id: str, task: Any, args: Any, kwargs: Any, **_: Any) -> None:
    _record("task_prerun", task_id, task.name, args)


@signals.task_postrun.connect
def postrun(sender: Any, task_id: str, retval: Any, state: str, **_: Any) -> None:
    _record("task_postrun", task_id, state, retval if state == "SUCCESS" else type(retval).__name__)


@signals.task_success.connect
def success(sender: Any, result: Any, **_: Any) -> None:
    _record("task_success", sender.name, result)


@signals.task_failure.connect
def failure(sender: Any, task_id: str, exception: BaseException, traceback: str, **_: Any) -> None:
    _record("task_failure", task_id, type(exception).__name__, "Traceback" in traceback)


@signals.task_revoked.connect
def revoked(sender: Any, expired: bool, **_: Any) -> None:
    _record("task_revoked", expired)


@signals.task_prerun.connect
def broken(sender: Any, **_: Any) -> None:
    raise RuntimeError("a receiver that fails must not stop the job")


@signals.worker_ready.connect
def ready(sender: Any, **_: Any) -> None:
    _record("worker_ready", sender.name)


@signals.worker_shutdown.connect
def shutdown(sender: Any, **_: Any) -> None:
    _record("worker_shutdown", sender.name)
