"""The placeholders of the docs' canvas examples, as real tasks (tests/test_docs.py runs those examples).

README.md and docs/canvas.md write ``fetch.s(url) | parse.s() | store.s()`` and the like: the docs test
evaluates them with the names below in the document's namespace, and its workers import this module
(and tests/tasks_canvas.py, for ``add``, ``mul`` and ``square``).
"""

from __future__ import annotations

from typing import Any

from tasks import task
from tests.tasks_canvas import add, mul, square  # queue 'canvas'

__all__ = ["add", "fetch", "images", "mul", "parse", "paths", "resize", "square", "store", "url", "zip_up"]

url = "https://example.com/page"
images = ["a.png", "b.png", "c.png"]
paths = images


@task(queue="default")
def fetch(address: str) -> str:
    return f"<html>{address}</html>"


@task(queue="default")
def parse(page: str) -> dict[str, Any]:
    return {"length": len(page)}


@task(queue="default")
def store(parsed: dict[str, Any]) -> bool:
    return bool(parsed)


@task(queue="default")
def resize(path: str) -> str:
    return f"small-{path}"


@task(queue="default")
def zip_up(files: list[str]) -> str:
    return ",".join(files)
