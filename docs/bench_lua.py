"""Server time per job of the claim and finish scripts alone, as a worker sends them, against a private server.

Usage: ``.venv/bin/python docs/bench_lua.py [JOBS] [BATCH] [CHECKOUT ...]`` (20,000 jobs in batches of 32;
each checkout's scripts in turns, three times; the running tree's when none is given). Each job is a plain
hash as the producer writes it; the scripts claim BATCH jobs, then settle them as successes. The figure is
the median per-call time ``SLOWLOG`` logged for each script, divided by the batch: a preempted server
stretches a few calls, which the median leaves out.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from config.embedded import start_server

NOW_TEXT = "2026-12-02T01:00:00.000000Z"
CLAIMS, PAUSED, WORKER = "taskrail:claims:w1", "taskrail:paused", "rq:worker:w1"


def measure(conn: redis.Redis, checkout: Path, jobs: int, batch: int) -> tuple[float, float]:
    """(claim, finish) µs per job for ``checkout``'s scripts, loaded in a child so its modules are its own."""
    code = (
        "import sys, json; from tasks.core.scripting import load_command as L; "
        "print(json.dumps({n: [L(n).sha, L(n).source] for n in ('claim', 'finish')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    loaded = json.loads(out)
    scripts = {name: conn.script_load(source) for name, (_, source) in loaded.items()}
    conn.flushdb()
    with conn.pipeline(transaction=False) as pipe:
        for i in range(jobs):
            fields = {"data": "[]", "status": "queued", "origin": "q", "tr_task": "t", "timeout": 60,
                      "result_ttl": 500, "failure_ttl": 900, "created_at": NOW_TEXT, "description": "t()",
                      "enqueued_at": NOW_TEXT}  # fmt: skip
            pipe.hset(f"rq:job:j{i}", mapping=fields)
            pipe.rpush("rq:queue:q", f"j{i}")
        pipe.execute()
    conn.config_set("slowlog-log-slower-than", 0)
    conn.config_set("slowlog-max-len", jobs)
    conn.slowlog_reset()
    done = 0
    while done < jobs:
        now = time.time()
        rows = conn.evalsha(scripts["claim"], 3, CLAIMS, PAUSED, "q", "w1", batch, now, NOW_TEXT, now + 60, 100_000,
                            "strict", 0, 0, 100_000, 900, 1, 0, 0)[:-1]  # fmt: skip
        records = []
        for row in rows:
            records += [row[0].decode(), "q", "ok", "", 500, 0, "", "", 0.1, "t", "le_5ms", int(row[3]), NOW_TEXT,
                        NOW_TEXT]  # fmt: skip
        conn.evalsha(scripts["finish"], 2, CLAIMS, WORKER, "w1", now, NOW_TEXT, 100_000, int(now // 60), *records)
        done += len(rows)
    times: dict[str, list[int]] = {"claim": [], "finish": []}
    names = {sha: name for name, sha in scripts.items()}
    for entry in conn.slowlog_get(jobs):
        words = entry["command"].split()
        if words[0].lower() == b"evalsha" and words[1].decode() in names:
            times[names[words[1].decode()]].append(entry["duration"])
    return statistics.median(times["claim"]) / batch, statistics.median(times["finish"]) / batch


def main() -> None:
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 32
    checkouts = [Path(p).resolve() for p in sys.argv[3:]] or [Path(__file__).resolve().parent.parent]
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-lua-")), appendonly=False)
    try:
        conn = redis.Redis(port=server.port)
        for turn in range(3):
            for checkout in checkouts:
                claim, finish = measure(conn, checkout, jobs, batch)
                print(f"turn {turn + 1} {checkout}: claim {claim:.1f} µs, finish {finish:.1f} µs per job")
    finally:
        os.kill(server.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
