"""The pytest plugin with every fixture of ``tasks.testing`` and a worker on a thread: ``pytest -p workers.testing``.

``taskrail_inprocess_worker`` is Celery's ``celery_worker``: the real ``workers.Worker`` on a thread of the test
process (workers/inprocess.py), so tasks defined in the test module itself run. It lives on the consumer side
(``tasks`` never imports ``workers``); ``tasks.testing``'s fixtures are all here too, so one plugin is enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.embedded import EmbeddedServer
from config.settings import load_settings
from tasks.core.client import default_client
from tasks.testing import taskrail_config, taskrail_eager, taskrail_queues, taskrail_server, taskrail_worker
from workers.inprocess import start_worker

__all__ = [
    "taskrail_config",
    "taskrail_eager",
    "taskrail_inprocess_worker",
    "taskrail_queues",
    "taskrail_server",
    "taskrail_worker",
]


@pytest.fixture
def taskrail_inprocess_worker(
    taskrail_server: EmbeddedServer,
    taskrail_config: dict[str, str],
    taskrail_queues: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[object]:
    """A real worker on a thread of this process (Celery's ``celery_worker``), on an emptied database.

    It shares this process's task registry, so tasks defined in the test module run; see
    workers/inprocess.py for what only a worker process does (signals, fork isolation).
    """
    redis.Redis.from_url(taskrail_server.url).flushdb()
    monkeypatch.setenv("TASKRAIL_DATA_DIR", str(tmp_path / "taskrail"))
    for key, value in taskrail_config.items():
        monkeypatch.setenv(key, value)
    default_client.cache_clear()
    with start_worker(taskrail_queues, settings=load_settings()) as worker:
        yield worker
    default_client.cache_clear()
