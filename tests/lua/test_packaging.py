"""The scripts ship in the wheel: a missing package-data line would only show after an install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tasks.core.scripting import LUA_DIR

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "tasks", "workers", "config", "scripts", "deploy")


def test_the_wheel_holds_every_lua_file(tmp_path: Path) -> None:
    tree = tmp_path / "src"  # a copy, so the build leaves nothing in the checkout
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path / "dist")],
        cwd=tree, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("taskrail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {path.relative_to(ROOT).as_posix() for path in LUA_DIR.rglob("*.lua")}
    assert expected and expected <= names, sorted(expected - names)
