"""Detects a user module that hides one of taskrail's packages, before anything imports it.

Celery's tutorial names its module ``tasks.py``; beside it (the current directory is on ``sys.path`` for
``rq worker`` and ``python -m``), ``import tasks`` finds that file instead of taskrail's ``tasks`` package and
fails later with a puzzling "cannot import name 'task' from partially initialized module 'tasks'". This
looks the packages up without importing them and says what to rename. Standard library only, on purpose.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

__all__ = ["PACKAGES", "ShadowedPackage", "check_not_shadowed"]

PACKAGES = ("tasks", "config")
_ROOT = Path(__file__).resolve().parent.parent


class ShadowedPackage(RuntimeError):
    """Raised when a module of the user's is found where one of taskrail's packages should be (not an
    ImportError: RQ's worker class loader would swallow that and report "Invalid attribute name")."""


def check_not_shadowed(packages: tuple[str, ...] = PACKAGES) -> None:
    """Raise ShadowedPackage naming the file to rename when ``tasks`` or ``config`` is not taskrail's."""
    for name in packages:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) if module is not None else _origin(name)
        if origin is None:
            continue
        path = Path(origin).resolve()
        if path == _ROOT / name / "__init__.py":
            continue
        raise ShadowedPackage(
            f"{path} hides taskrail's {name!r} package: Python imports your {path.name} instead of it. Rename "
            f"your module (e.g. to myapp_{name}.py, as Celery's own tasks.py would need here) and update "
            "TASKRAIL_IMPORTS and your imports to the new name",
        )


def _origin(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None else None
