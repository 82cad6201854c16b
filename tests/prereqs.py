"""Prerequisites some tests need (a browser driver, the openssl command): skipped in a bare ``pytest``, but a
failure under ``make test``, which sets ``STRICT_TEST_PREREQS=1`` so that no test can vanish from a run unnoticed."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

STRICT_ENV = "STRICT_TEST_PREREQS"


def missing(what: str, fix: str) -> NoReturn:
    """Skip the test, or fail it under ``make test``, saying what is missing and how to install it."""
    message = f"{what} is missing: {fix}"
    if os.environ.get(STRICT_ENV) == "1":
        pytest.fail(f"{message} (make test runs every test; a bare pytest would skip this one)", pytrace=False)
    pytest.skip(message, allow_module_level=True)  # also from a module's top, like importorskip


def require_module(name: str, fix: str) -> ModuleType:
    """``name`` imported, or ``missing``."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the Python module {name}", fix)


def require_command(name: str, fix: str) -> str:
    """The path of command ``name``, or ``missing``."""
    path = shutil.which(name)
    if path is None:
        missing(f"the {name} command", fix)
    return path
