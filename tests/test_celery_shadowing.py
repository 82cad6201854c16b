"""A user module named like one of taskrail's packages (Celery's tutorial calls its module ``tasks.py``) is
detected before it breaks an import, with a message that says what to rename: real ``rq worker`` runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN


@pytest.mark.parametrize("program", [[str(BIN / "rq"), "worker", "-w", "workers.Worker", "default"],
                                     [str(BIN / "python"), "-c", "import sys; sys.path.insert(0, ''); import workers"]])  # fmt: skip
def test_a_tasks_py_beside_the_worker_is_named(tmp_path: Path, env: dict[str, str], program: list[str]) -> None:
    (tmp_path / "tasks.py").write_text("from tasks import task\n\n\n@task\ndef add(x, y):\n    return x + y\n")
    environ = {**env, "PYTHONPATH": ""}  # as installed: taskrail from the venv, the user's directory first
    done = subprocess.run(program, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{tmp_path / 'tasks.py'} hides taskrail's 'tasks' package" in done.stderr
    assert "Rename your module (e.g. to myapp_tasks.py" in done.stderr


def test_taskrails_own_packages_pass(env: dict[str, str]) -> None:
    check = "from workers.shadowing import check_not_shadowed; check_not_shadowed(); print('ok')"
    done = subprocess.run([str(BIN / "python"), "-c", check], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
