"""The placeholders of the docs' canvas examples, as real tasks (tests/test_docs.py runs those examples).

README.md and docs/canvas.md write ``fetch.s(url) | parse.s() | store.s()`` and the like: the docs test
evaluates them with the names below in the document's namespace, and its workers import this module.
"""

from __future__ import annotations

from typing import Any

from tasks import task

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


@task(queue="default")
def add(a: int, b: int) -> int:
    return a + b


@task(queue="default")
def mul(a: int, b: int) -> int:
    return a * b


@task(queue="default")
def square(x: int) -> int:
    return x * x
