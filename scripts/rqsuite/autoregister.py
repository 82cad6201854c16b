"""A task module for ``TASKRAIL_IMPORTS``: importing it registers RQ's test fixtures (worker subprocesses need it)."""

from __future__ import annotations

from scripts.rqsuite.fixtures import register_fixtures

__all__: list[str] = []

register_fixtures()
