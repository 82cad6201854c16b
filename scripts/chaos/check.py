"""The chaos run's verdict, read from the database: lost jobs, double completions, extra runs, leftovers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import redis

from scripts.chaos.jobs import EXECUTIONS
from tasks.core import keys
from tasks.core.protocol import decode_return_value

__all__ = ["Findings", "check", "final_count"]

CHUNK = 1000
FINAL = (b"finished", b"failed", b"canceled")
RESULT_SUCCESS = b"1"


@dataclass
class Findings:
    """What the final state says; ``ok`` when nothing was lost and nothing completed twice."""

    jobs: int
    lost: dict[str, str] = field(default_factory=dict)  # job id -> why it counts as lost
    double_completed: dict[str, str] = field(default_factory=dict)  # job id -> the records it has
    executions_beyond_one: int = 0  # runs to the end past the first, summed over jobs (at-least-once)
    jobs_run_again: int = 0
    events_missing: int = 0  # finished jobs with no `completed` event: the stream was trimmed, or an event lost
    leftovers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.lost and not self.double_completed


def final_count(conn: redis.Redis, queue: str) -> int:
    """Jobs of ``queue`` in a final registry (finished, failed or canceled); a quick progress figure."""
    with conn.pipeline(transaction=False) as pipe:
        for template in (keys.FINISHED, keys.FAILED, keys.CANCELED):
            pipe.zcard(template.format(queue))
        return sum(int(n) for n in pipe.execute())


def check(conn: redis.Redis, expected: Mapping[str, int], queue: str) -> Findings:
    """Compare every job in ``expected`` (id -> value its result must hold) with the database."""
    findings = Findings(jobs=len(expected))
    completed_events = _completed_events(conn, queue)
    executions = {k.decode(): int(v) for k, v in conn.hgetall(EXECUTIONS).items()}
    ids = list(expected)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with conn.pipeline(transaction=False) as pipe:
            for job_id in chunk:
                pipe.hget(keys.JOB.format(job_id), "status")
                pipe.xrange(keys.RESULTS.format(job_id))
            replies = pipe.execute()
        for i, job_id in enumerate(chunk):
            status, entries = replies[2 * i], replies[2 * i + 1]
            _judge(findings, job_id, expected[job_id], status, entries, completed_events.get(job_id, 0))
    for job_id in ids:
        runs = executions.get(job_id, 0)
        if runs > 1:
            findings.executions_beyond_one += runs - 1
            findings.jobs_run_again += 1
    findings.leftovers = leftovers(conn, queue)
    return findings


def _judge(findings: Findings, job_id: str, value: int, status: bytes | None, entries: list[tuple[bytes, dict[bytes, bytes]]],
           events: int) -> None:  # fmt: skip
    successes = [fields for _, fields in entries if fields.get(b"type") == RESULT_SUCCESS]
    if status != b"finished":
        findings.lost[job_id] = f"status {status.decode() if status else 'missing (no job hash)'}"
    elif not successes:
        findings.lost[job_id] = "finished without a result"
    else:
        got = decode_return_value(successes[-1].get(b"return_value"))
        if got != value:
            findings.lost[job_id] = f"result {got!r}, expected {value!r}"
    if len(successes) > 1 or events > 1:
        findings.double_completed[job_id] = f"{len(successes)} results, {events} completed events"
    if status == b"finished" and events == 0:
        findings.events_missing += 1


def _completed_events(conn: redis.Redis, queue: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for fields in _stream(conn, keys.EVENTS.format(queue)):
        if fields.get(b"event") == b"completed":
            counts[fields.get(b"job", b"").decode()] += 1
    return counts


def _stream(conn: redis.Redis, key: str) -> Iterator[dict[bytes, bytes]]:
    start = "-"
    while True:
        batch = conn.xrange(key, min=start, count=10 * CHUNK)
        for _, fields in batch:
            yield fields
        if len(batch) < 10 * CHUNK:
            return
        start = "(" + batch[-1][0].decode()


def leftovers(conn: redis.Redis, queue: str) -> list[str]:
    """Claims, started-registry entries and concurrency slots still held; ``[]`` when clean."""
    found = []
    for pattern in (keys.CLAIMS.format("*"), keys.CONCURRENCY.format("*")):
        for key in conn.scan_iter(match=pattern, count=1000):
            found.append(f"{key.decode()} ({_size(conn, key)} entries)")
    wip = int(conn.zcard(keys.STARTED.format(queue)))
    if wip:
        found.append(f"{keys.STARTED.format(queue)} ({wip} entries)")
    return sorted(found)


def _size(conn: redis.Redis, key: bytes) -> int:
    kind = conn.type(key)
    sizes = {b"hash": conn.hlen, b"zset": conn.zcard, b"set": conn.scard, b"list": conn.llen}
    size = sizes.get(kind)
    return int(size(key)) if size else 1
