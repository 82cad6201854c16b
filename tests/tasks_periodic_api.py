"""Schedules added in code, Celery's way, at the import of a task module (TASKRAIL_IMPORTS=tests.tasks_periodic_api)."""

from __future__ import annotations

from datetime import timedelta

from tasks.schedules import add_periodic_task, schedule
from tests.tasks_sched import tick

add_periodic_task(schedule(timedelta(seconds=1)), tick.s("code"), name="code every second")
