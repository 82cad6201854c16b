"""The pytest plugin (``pytest -p tasks.testing``), run the way a user runs it: an inner pytest process in
a project of its own, whose tests use a real embedded server and a real worker (Celery's Testing guide)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import BIN, ROOT

PROJECT = {
    "proj_tasks.py": """
from tasks import shared_task


@shared_task
def mul(x, y):
    return x * y


@shared_task
def fails():
    raise KeyError("nope")
""",
    "conftest.py": """
import pytest


@pytest.fixture
def taskrail_config():
    return {"TASKRAIL_IMPORTS": "proj_tasks"}
""",
    "test_proj.py": """
import pytest

from proj_tasks import fails, mul
from tasks.core.eager import EagerResult


def test_mul_on_a_real_worker(taskrail_worker):
    assert mul.delay(4, 4).get(timeout=10) == 16


def test_the_tasks_own_error(taskrail_worker):
    with pytest.raises(KeyError):
        fails.delay().get(timeout=10)


def test_eager(taskrail_eager):
    result = mul.delay(3, 3)
    assert isinstance(result, EagerResult) and result.get() == 9
""",
    "test_inprocess.py": """
import threading
import time

import pytest

from proj_tasks import mul
from tasks import TaskTimeout, shared_task

RAN_ON = []


@shared_task
def defined_in_the_test_module(x):
    RAN_ON.append(threading.current_thread().name)
    return x + 1


@shared_task(time_limit=1)
def too_slow():
    while True:
        time.sleep(0.01)


def test_a_task_of_the_test_module_runs_on_the_in_process_worker(taskrail_inprocess_worker):
    assert defined_in_the_test_module.delay(41).get(timeout=10) == 42
    assert RAN_ON and RAN_ON[0].startswith("taskrail-worker-")  # here, on the worker's thread
    assert mul.delay(6, 7).get(timeout=10) == 42


def test_a_time_limit_reaches_a_job_on_the_thread(taskrail_inprocess_worker):
    with pytest.raises(TaskTimeout):
        too_slow.delay().get(timeout=15)
    assert mul.delay(2, 2).get(timeout=10) == 4  # the worker carries on
""",
}


def test_the_plugin_runs_a_users_tests(tmp_path: Path, env: dict[str, str]) -> None:
    for name, text in PROJECT.items():
        (tmp_path / name).write_text(text)
    environ = {**env, "PYTHONPATH": f"{ROOT}:{tmp_path}"}
    environ.pop("REDIS_URL")  # the plugin starts its own server
    done = subprocess.run(
        [str(BIN / "python"), "-m", "pytest", "-p", "workers.testing", "-q", "-p", "no:cacheprovider", "test_proj.py",
         "test_inprocess.py"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
