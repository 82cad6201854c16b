"""The pytest plugin loaded into RQ's own test suite (``-p scripts.rqsuite.plugin``); it never edits RQ's files.

Environment, set by ``scripts.rqsuite.run``:
``RQSUITE_MODE`` (not ``TASKRAIL_*``: taskrail rejects unknown settings): ``rq`` (RQ's own worker) or ``taskrail`` (``rq.Worker`` and ``rq.SimpleWorker`` replaced
by ``workers.Worker``, RQ's fixtures registered as tasks); both make JSON RQ's default serializer.
``RQSUITE_TEST_TIMEOUT_S``: past it, a watchdog raises ``TestHung`` in the test's thread every few seconds until
the test ends: pytest-timeout's SIGALRM does not reach a test whose worker took SIGALRM over.
``RQSUITE_PORT``: the private server's port; RQ's tests connect to ``localhost:6379``, sent there instead.
Processes that RQ's tests start (``rqworker``, ``python -c``) get the same patches from a ``sitecustomize.py``
that ``scripts.rqsuite.run`` writes into the output folder and puts on ``PYTHONPATH``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from config.settings import Settings, load_settings
from scripts.rqsuite.names import MODE_ENV, MODES, PORT_ENV, TIMEOUT_ENV

__all__ = [
    "TestHung", "patch_from_env", "patch_process", "pytest_collection_finish", "pytest_configure",
    "pytest_runtest_call",
]  # fmt: skip

WATCHDOG_REPEAT_S = 3.0
RQ_DEFAULT_PORT = 6379


def _redirect_default_port(port: int) -> None:
    """Every redis connection to localhost:6379 (RQ's tests' default) goes to ``port``."""
    from redis.connection import Connection

    original = Connection.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.port == RQ_DEFAULT_PORT and self.host in ("localhost", "127.0.0.1"):
            self.port = port

    Connection.__init__ = init  # type: ignore[method-assign]


def _json_by_default() -> None:
    """RQ's default serializer becomes JSON in every RQ module that imported ``resolve_serializer``."""
    import rq.serializers
    from rq.serializers import JSONSerializer

    original = rq.serializers.resolve_serializer

    def resolve(serializer: Any = None) -> Any:
        return original(serializer or JSONSerializer)

    rq.serializers.DefaultSerializer = JSONSerializer  # type: ignore[misc,assignment]
    for name, module in list(sys.modules.items()):
        if name == "rq" or name.startswith("rq."):
            if getattr(module, "resolve_serializer", None) is original:
                module.resolve_serializer = resolve  # type: ignore[attr-defined]
            if getattr(module, "DefaultSerializer", None) is not None:
                module.DefaultSerializer = JSONSerializer  # type: ignore[attr-defined]


def _use_taskrail_worker() -> None:
    """``rq.Worker`` and ``rq.SimpleWorker`` (and their aliases) become ``workers.Worker``; fixtures become tasks."""
    import rq
    import rq.worker
    import rq.worker.base
    import rq.worker.worker_classes

    from scripts.rqsuite.fixtures import register_fixtures
    from workers import Worker

    class ForkingWorker(Worker):
        """RQ's ``Worker`` runs each job in a forked work-horse: taskrail's ``isolation: fork`` does the same."""

        def __init__(self, *args: Any, settings: Settings | None = None, **kwargs: Any) -> None:
            super().__init__(*args, settings=settings or replace(load_settings(), isolation="fork"), **kwargs)

    for module in (rq, rq.worker, rq.worker.base, rq.worker.worker_classes):
        for name, cls in (("Worker", ForkingWorker), ("SimpleWorker", Worker)):
            if hasattr(module, name):
                setattr(module, name, cls)
    register_fixtures()


def patch_process(mode: str, port: int | None) -> None:
    """Apply the mode's patches to this process, once (the generated ``sitecustomize`` and the plugin both call it)."""
    import rq.serializers

    if getattr(rq.serializers, "_rqsuite_mode", None) is not None:
        return
    rq.serializers._rqsuite_mode = mode  # type: ignore[attr-defined]
    if port:
        _redirect_default_port(port)
    # Imported now so that the serializer patch reaches the names they import.
    import rq.cli
    import rq.worker_pool

    _json_by_default()
    if mode == "taskrail":
        _use_taskrail_worker()


def patch_from_env() -> None:
    """``patch_process`` with the mode and port from the environment; nothing when no mode is set."""
    mode = os.environ.get(MODE_ENV)
    if mode is None:
        return
    if mode not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {mode!r}")
    port = os.environ.get(PORT_ENV)
    patch_process(mode, int(port) if port else None)


def pytest_configure(config: pytest.Config) -> None:
    """Patch before RQ's test modules import ``Worker`` and ``Queue``."""
    try:
        patch_from_env()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


class TestHung(BaseException):
    """Raised in a test's thread by the watchdog when the test runs past ``RQSUITE_TEST_TIMEOUT_S``."""

    __test__ = False


def _watch(thread_id: int, limit_s: float, done: threading.Event) -> None:
    if done.wait(limit_s):
        return
    while not done.is_set():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(TestHung))
        done.wait(WATCHDOG_REPEAT_S)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Register the job functions that RQ's test modules define for themselves (taskrail mode)."""
    if os.environ.get(MODE_ENV) == "taskrail":
        from scripts.rqsuite.fixtures import register_test_module_functions

        register_test_module_functions()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run the test under the watchdog (when ``RQSUITE_TEST_TIMEOUT_S`` is set)."""
    limit = os.environ.get(TIMEOUT_ENV)
    if not limit:
        yield
        return
    done = threading.Event()
    watchdog = threading.Thread(target=_watch, args=(threading.get_ident(), float(limit), done), daemon=True)
    watchdog.start()
    try:
        yield
    finally:
        done.set()
