"""A producer host's program: ``python -m tests.multihost.produce OUT MODE N MS [SECONDS]``.

``map``: enqueue N jobs with ``work.map`` in chunks of 1000 and write their ids (JSON list) to OUT.
``apply`` / ``maps``: for SECONDS, call ``apply_async`` with a ``retry_policy`` (or ``map`` of 20 jobs, without one) in a
loop; every call's outcome is a JSON line in OUT: kind, ok, ids, error (type: message), started and duration (s).
"""

from __future__ import annotations

import json
import sys
import time

from tests.multihost.tasks import work

CHUNK = 1000
POLICY = {"max_retries": 200, "interval_start": 0.1, "interval_step": 0.1, "interval_max": 0.3}


def produce_map(out: str, n: int, ms: float) -> None:
    ids: list[str] = []
    for start in range(0, n, CHUNK):
        ids += [r.id for r in work.enqueue_many([(i, ms) for i in range(start, min(n, start + CHUNK))])]
    with open(out, "w") as fh:
        json.dump(ids, fh)


def produce_calls(out: str, kind: str, ms: float, seconds: float) -> None:
    deadline, i = time.monotonic() + seconds, 0
    with open(out, "w") as fh:
        while time.monotonic() < deadline:
            started = time.monotonic()
            row: dict[str, object] = {"kind": kind.removesuffix("s"), "started": time.time()}
            try:
                if kind == "apply":
                    row["ids"] = [work.apply_async((i, ms), retry_policy=POLICY).id]
                else:
                    row["ids"] = [r.id for r in work.enqueue_many([(i * 100 + k, ms) for k in range(20)])]
                row["ok"] = True
            except Exception as exc:  # every error the caller sees is recorded, with its type
                row.update(ok=False, ids=[], error=f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
            row["duration"] = round(time.monotonic() - started, 3)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            i += 1
            time.sleep(0.02)


if __name__ == "__main__":
    out, mode, n, ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if mode == "map":
        produce_map(out, n, ms)
    else:
        produce_calls(out, mode, ms, float(sys.argv[5]))
