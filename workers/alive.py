"""A file per worker touched on every heartbeat tick: what container probes check without starting Python.

``taskrail health --this-host`` proves more (Redis holds the heartbeat) but starts a Python process
(about 0.2 s of CPU and 40 MB) on every probe of every pod. The rendered Kubernetes probes check
instead that ``<data dir>/alive/<worker name>`` changed within the last few heartbeat intervals
(:data:`PROBE`, run by ``sh``): the worker's maintenance thread touches it before each heartbeat,
whether Redis answers or not, so a Redis outage fails no probe while a stuck worker does.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

__all__ = ["ALIVE_DIR", "probe_command", "touch_alive"]

ALIVE_DIR = "alive"


def touch_alive(data_dir: Path, name: str) -> None:
    """Touch ``<data_dir>/alive/<name>``; a full or read-only disk is the probe's to report, not an error here."""
    with contextlib.suppress(OSError):
        folder = data_dir / ALIVE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).touch()


def probe_command(data_dir: str, fresh_s: int, host_variable: str = "HOSTNAME") -> list[str]:
    """``sh -c`` true when a worker named ``$<host_variable>.*`` touched its file in the last ``fresh_s`` s."""
    find = f'find {data_dir}/{ALIVE_DIR} -maxdepth 1 -name "${host_variable}.*" -newermt "-{fresh_s} seconds"'
    return ["sh", "-c", f'test -n "$({find} 2>/dev/null)"']
