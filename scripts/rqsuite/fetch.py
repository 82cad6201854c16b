"""Fetch RQ's source distribution for the installed RQ version and unpack it (its ``tests/`` is the specification)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import rq

from config.errors import ConfigError

__all__ = ["fetch_suite", "installed_rq_version"]


def installed_rq_version() -> str:
    """The version of the RQ this interpreter imports."""
    return str(rq.__version__)


def fetch_suite(cache_dir: Path, version: str | None = None) -> Path:
    """RQ's unpacked sdist under ``cache_dir`` (downloaded once with pip); returns the folder holding ``tests/``.

    Raises:
        ConfigError: pip could not download the sdist, or it holds no ``tests/fixtures.py``.
    """
    version = version or installed_rq_version()
    root = cache_dir / f"rq-{version}"
    if (root / "tests" / "fixtures.py").exists():
        return root
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / f"rq-{version}.tar.gz"
    if not archive.exists():
        cmd = [sys.executable, "-m", "pip", "download", f"rq=={version}", "--no-binary", ":all:", "--no-deps",
               "--quiet", "-d", str(cache_dir)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not archive.exists():
            raise ConfigError(
                f"pip could not download RQ {version}'s sdist into {cache_dir}: {done.stderr.strip()[-400:]}; "
                "check that the package index is reachable"
            )
    with tarfile.open(archive) as tar:
        tar.extractall(cache_dir, filter="data")
    if not (root / "tests" / "fixtures.py").exists():
        raise ConfigError(f"{archive} holds no tests/fixtures.py; RQ {version}'s sdist does not ship its tests")
    return root
