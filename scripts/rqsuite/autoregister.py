"""A task module for ``TASKRAIL_IMPORTS``: importing it registers RQ's fixtures and test modules' job functions."""

from __future__ import annotations

from scripts.rqsuite.fixtures import register_fixtures, register_test_module_functions

__all__: list[str] = []

register_fixtures()
register_test_module_functions()  # those TASKRAIL_IMPORTS listed before this module
