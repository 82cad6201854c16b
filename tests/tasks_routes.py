"""Tasks for the routing tests (TASKRAIL_IMPORTS=tests.tasks_routes): two without a queue, one that names its own."""

from __future__ import annotations

from tasks import task

ROUTES = '{"tests.tasks_routes.double": "exact", "tests.tasks_routes.*": "globbed"}'


@task
def double(n: int) -> int:
    return 2 * n


@task
def square(n: int) -> int:
    return n * n


@task(queue="pinned")
def pinned(n: int) -> int:
    return n
