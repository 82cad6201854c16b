"""``get()`` and ``.result`` give back the task's own exception (Celery's behaviour), rebuilt without
unpickling or importing: real workers for the end-to-end part, plain objects for the rebuilding rules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import redis

from tasks import TaskFailed
from tasks.core.remote_errors import rebuild, remote_class
from tests import tasks_celery
from tests.conftest import Processes, live_workers, wait_for

CELERY = {"TASKRAIL_IMPORTS": "tests.tasks_celery"}


def start_worker(procs: Processes, redis_url: str, env: dict[str, str] = CELERY) -> subprocess.Popen[bytes]:
    """A worker on the ``celery`` queue with ``env``, live before it returns."""
    proc = procs.worker("celery", env=env)
    wait_for(lambda: live_workers(redis.Redis.from_url(redis_url)), 15, what="worker heartbeat")
    return proc


def records(conn: redis.Redis, key: str) -> list:
    """The JSON values a test task pushed to ``key``."""
    return [json.loads(v) for v in conn.lrange(key, 0, -1)]


def test_a_builtin_exception_comes_back_as_itself(celery_worker) -> None:
    result = tasks_celery.lookup_key.delay("zz")
    with pytest.raises(KeyError) as info:
        result.get(timeout=10)
    assert info.value.args == ("zz",) and str(info.value) == "'zz'"
    assert isinstance(info.value, TaskFailed) and info.value.exc_type == "KeyError"
    assert 'return {"a": 1}[key]' in info.value.traceback
    assert isinstance(result.result, KeyError) and result.state == "FAILURE"
    assert isinstance(result.get(timeout=1, propagate=False), KeyError)


def test_a_task_modules_exception_comes_back_as_its_class(celery_worker) -> None:
    result = tasks_celery.overdraw.delay("acct-7")
    with pytest.raises(tasks_celery.Overdrawn) as info:
        result.get(timeout=10)
    assert info.value.account == "acct-7" and info.value.amount == 50
    assert isinstance(info.value, TaskFailed)


def test_a_standard_library_exception_comes_back_as_its_class(celery_worker) -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        tasks_celery.stdlib_error.delay().get(timeout=10)
    assert "Expecting property name" in str(info.value) and isinstance(info.value, TaskFailed)


def test_an_unknown_modules_exception_is_a_named_task_failed_and_nothing_is_imported(celery_worker) -> None:
    with pytest.raises(TaskFailed) as info:
        tasks_celery.foreign_error.delay().get(timeout=10)
    error = info.value
    assert type(error).__name__ == "Secret" and error.remote_type == "worker_only_errors.Secret"  # type: ignore[attr-defined]
    assert error.message == "from a module the producer never saw"
    assert "worker_only_errors" not in sys.modules


def test_a_module_not_allowed_is_never_used_even_when_imported() -> None:
    # subprocess is imported but pytest's internals are not a registered task module nor the standard library.
    assert remote_class("_pytest.outcomes.Failed") is None
    assert remote_class("subprocess.CalledProcessError") is subprocess.CalledProcessError
    assert remote_class("builtins_not_there.Boom") is None and remote_class("SystemExit") is None
    assert remote_class("tests.tasks_celery.Overdrawn") is tasks_celery.Overdrawn


@pytest.mark.parametrize(
    ("exc_type", "message", "args"),
    [
        ("ValueError", "bad", ("bad",)),
        ("KeyError", "'x'", ("x",)),
        ("ValueError", "('a', 1)", ("a", 1)),
        ("RuntimeError", "", ()),
    ],
)
def test_arguments_are_recovered_from_the_text(exc_type: str, message: str, args: tuple) -> None:
    error = rebuild("j1", exc_type, message, "")
    assert type(error).__mro__[1].__name__ == exc_type and error.args == args and str(error) == message


def test_the_traceback_names_the_module_and_the_full_text() -> None:
    tb = "Traceback (most recent call last):\n  File \"x.py\", line 1\ntests.tasks_celery.Overdrawn: ('a', 3)\n"
    error = rebuild("j1", "Overdrawn", "shortened", tb)
    assert isinstance(error, tasks_celery.Overdrawn) and error.amount == 3 and error.traceback == tb
    assert error.message == "shortened"  # what the worker recorded (e.g. "failed after 3 retries: ...")
    assert type(error) is type(rebuild("j2", "Overdrawn", "", tb))  # one class per remote class


def test_a_class_that_cannot_be_rebuilt_from_its_text_gets_the_stand_in() -> None:
    tb = "Traceback\nsubprocess.CalledProcessError: Command 'x' returned non-zero exit status 1.\n"
    error = rebuild("j1", "CalledProcessError", "Command 'x' returned non-zero exit status 1.", tb)
    assert not isinstance(error, subprocess.CalledProcessError) and isinstance(error, TaskFailed)
    assert error.remote_type == "subprocess.CalledProcessError" and "exit status 1" in str(error)  # type: ignore[attr-defined]
