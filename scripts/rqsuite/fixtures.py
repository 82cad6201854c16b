"""Register the functions of RQ's ``tests/fixtures.py`` as taskrail tasks under their own dotted names."""

from __future__ import annotations

import importlib
import inspect
import logging
import sys

from config.errors import ConfigError
from tasks import task
from tasks.core.registry import lookup

__all__ = ["FIXTURES_MODULE", "register_fixtures", "register_test_module_functions"]

FIXTURES_MODULE = "tests.fixtures"

log = logging.getLogger("taskrail.rqsuite")


def register_fixtures() -> list[str]:
    """Register every plain function of RQ's fixtures (tasks and callbacks alike); returns the names registered.

    The module's attributes stay the plain functions, so RQ's tests keep enqueueing them by reference and
    the jobs carry ``tests.fixtures.<name>``, the name each task is registered under.
    """
    return _register_module(FIXTURES_MODULE, skip_tests=False)


def register_test_module_functions() -> list[str]:
    """Register the job functions RQ's imported test modules define for themselves (not their ``test_*``)."""
    modules = [name for name in sys.modules if name.startswith("tests.test_")]
    return [name for module in modules for name in _register_module(module, skip_tests=True)]


def _register_module(module_name: str, *, skip_tests: bool) -> list[str]:
    module = importlib.import_module(module_name)
    names: list[str] = []
    for attr, func in vars(module).items():
        if not inspect.isfunction(func) or func.__module__ != module_name or attr.startswith("__"):
            continue
        if skip_tests and attr.startswith("test"):
            continue
        name = f"{module_name}.{attr}"
        if lookup(name) is not None:
            names.append(name)
            continue
        try:
            task(name=name)(func)
        except ConfigError as exc:  # a fixture taskrail cannot take as a task: the tests using it show it
            log.warning("not registered: %s: %s", name, exc)
            continue
        names.append(name)
    return names
