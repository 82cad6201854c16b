"""Celery's examples/tutorial/tasks.py, imports changed."""

from tasks import task


@task()
def add(x, y):
    return x + y
