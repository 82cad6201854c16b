"""The multihost scenarios' task: returns its argument after ``ms`` milliseconds of sleep."""

from __future__ import annotations

import time

from tasks import task


@task(queue="mh")
def work(n: int, ms: float = 0.0) -> int:
    if ms:
        time.sleep(ms / 1000)
    return n
