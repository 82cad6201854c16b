"""The scripts ship in the wheel: a missing package-data line would only show after an install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tasks.core.scripting import LUA_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_every_lua_file(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    [wheel] = tmp_path.glob("taskrail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {path.relative_to(ROOT).as_posix() for path in LUA_DIR.rglob("*.lua")}
    assert expected and expected <= names, sorted(expected - names)
