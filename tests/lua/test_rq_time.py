"""includes/rq_time.lua writes RQ's time text from the server's clock: the same text RQ writes, any date."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import redis
from rq.utils import utcformat

from tasks.core.scripting import expand
from tests.lua.helpers import NOW, NOW_TEXT, job, run

SCRIPT = expand('--- @include "includes/rq_time"\nreturn rq_time_text(tonumber(ARGV[1]), tonumber(ARGV[2]))')


def test_rq_time_text_is_rqs_own_text_on_every_kind_of_day(conn: redis.Redis) -> None:
    rng = random.Random(19)
    edges = [0, 68_169_599, 951_782_400, 951_868_799, 1_709_164_800, 4_107_542_399, 4_107_542_400, 253_402_300_799]
    # (1972-02-29's eve, 2000-02-29, 2024-02-29, 2100-02-28/03-01: not a leap year, 9999-12-31)
    moments = [(s, rng.randrange(1_000_000)) for s in edges + [rng.randrange(0, 4_200_000_000) for _ in range(300)]]
    for seconds, micros in moments:
        expected = utcformat(datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros))
        assert conn.eval(SCRIPT, 0, seconds, micros).decode() == expected, (seconds, micros)


def test_a_claim_without_a_time_writes_the_servers_own_as_the_jobs_start(conn: redis.Redis) -> None:
    job(conn, "a")
    conn.rpush("rq:queue:q", "a")
    conn.hset("rq:worker:w1", "state", "idle")
    before = conn.time()
    args = ["w1", 1, NOW, "", NOW + 60, 100, "strict", 0, 0, 1000, 900, 1, 0, 0]
    rows = run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)
    after = conn.time()
    assert rows[0][0] == b"a"
    started = conn.hget("rq:job:a", "started_at").decode()
    low, high = (utcformat(datetime.fromtimestamp(s + us / 1e6, UTC)) for s, us in (before, after))
    assert low <= started <= high and started != NOW_TEXT
    assert conn.hget("rq:job:a", "last_heartbeat").decode() == started
    assert conn.hget("rq:worker:w1", "state") == b"busy"  # an idle worker that claims is busy


def test_a_claim_leaves_a_suspended_or_busy_workers_state_and_makes_no_worker_hash(conn: redis.Redis) -> None:
    for state in ("suspended", None):
        conn.flushdb()
        job(conn, "a")
        conn.rpush("rq:queue:q", "a")
        if state:
            conn.hset("rq:worker:w1", "state", state)
        args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, 1000, 900, 1, 0, 0]
        run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)
        assert conn.hget("rq:job:a", "started_at").decode() == NOW_TEXT
        assert conn.hget("rq:worker:w1", "state") == (state.encode() if state else None)
