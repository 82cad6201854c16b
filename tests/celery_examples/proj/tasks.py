"""Celery's examples/next-steps/proj/tasks.py, imports changed."""

from tasks import task


@task
def add(x, y):
    return x + y


@task
def mul(x, y):
    return x * y


@task
def xsum(numbers):
    return sum(numbers)
