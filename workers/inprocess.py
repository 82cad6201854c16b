"""A real ``workers.Worker`` on a thread of this process, like Celery's ``celery.contrib.testing.worker.start_worker``.

For tests: the worker shares the process's task registry, so tasks defined in the test module itself
run, and the test sees the worker's exceptions and logs in its own output. It is the same worker
``rq worker -w workers.Worker`` runs (claim, settle, heartbeat, leader election, recovery), minus
what only a main thread can do: it installs no signal handlers (stop it by leaving the ``with``
block), and time limits and revokes reach its jobs as an exception at their next Python instruction,
as on a ``concurrency`` thread. Use a worker process (``tasks.testing``'s ``taskrail_worker``) to test
signals, ``isolation: fork`` or a hard time limit that must break a blocking call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

import redis

from config.connection import connect
from config.errors import ConfigError
from config.settings import Settings, load_settings
from tasks.core import keys

__all__ = ["start_worker"]

START_S = 30.0


@contextlib.contextmanager
def start_worker(queues: Sequence[str] = ("default",), *, settings: Settings | None = None, name: str | None = None,
                 burst: bool = False, timeout_s: float = START_S) -> Iterator[object]:  # fmt: skip
    """Run a worker on ``queues`` in a thread; yields it once it is live (in the worker set), stops it after.

    Raises:
        ConfigError: the worker did not come up within ``timeout_s`` (the reason, when it stopped, is chained).
    """
    from workers.worker import Worker  # the consumer side, only when a test asks for it

    settings = settings or load_settings()
    conn = connect(settings)
    worker = Worker(list(queues), connection=conn, settings=settings, name=name)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            worker.work(burst=burst)
        except BaseException as exc:  # reported to the test by the waits below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"taskrail-worker-{worker.name}", daemon=True)
    thread.start()
    try:
        _wait_live(conn, worker.name, thread, failure, timeout_s)
        yield worker
    finally:
        worker.request_stop()
        thread.join(settings.shutdown_timeout_s + 10)
        conn.close()
    if failure and not isinstance(failure[0], SystemExit):
        raise failure[0]


def _wait_live(conn: redis.Redis, name: str, thread: threading.Thread, failure: list[BaseException],
               timeout_s: float) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while not conn.sismember(keys.WORKERS, name):
        if not thread.is_alive() or time.monotonic() > deadline:
            cause = failure[0] if failure else None
            raise ConfigError(f"the in-process worker {name} did not start within {timeout_s}s"
                              f"{f': {cause!r}' if cause else ''}") from cause  # fmt: skip
        time.sleep(0.02)
