"""Register the functions of RQ's ``tests/fixtures.py`` as taskrail tasks under their own dotted names."""

from __future__ import annotations

import importlib
import inspect
import logging

from config.errors import ConfigError
from tasks import task
from tasks.core.registry import lookup

__all__ = ["FIXTURES_MODULE", "register_fixtures"]

FIXTURES_MODULE = "tests.fixtures"

log = logging.getLogger("taskrail.rqsuite")


def register_fixtures() -> list[str]:
    """Register every plain function of RQ's fixtures (tasks and callbacks alike); returns the names registered.

    The module's attributes stay the plain functions, so RQ's tests keep enqueueing them by reference and
    the jobs carry ``tests.fixtures.<name>``, the name each task is registered under.
    """
    module = importlib.import_module(FIXTURES_MODULE)
    names: list[str] = []
    for attr, func in vars(module).items():
        if not inspect.isfunction(func) or func.__module__ != FIXTURES_MODULE or attr.startswith("__"):
            continue
        name = f"{FIXTURES_MODULE}.{attr}"
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
