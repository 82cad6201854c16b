"""CLAIM with poison jobs, alone against the real server: never an error after the pop, never a lost job."""

from __future__ import annotations

import pytest
import redis

from tests.lua.helpers import NOW, NOW_TEXT, events, job, run, text


def _claim(conn: redis.Redis, count: int = 5, data_limit: int = 1000, failure_ttl: int = 7000) -> list:
    args = ["w1", count, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, data_limit, failure_ttl, 1, 0, 0]
    return run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)


def _limit_keys(conn: redis.Redis) -> list[bytes]:
    return conn.keys("taskrail:rl:*") + conn.keys("taskrail:cc:*")


BAD_FIELDS = [
    ("tr_conc", "abc"), ("tr_conc", "0"), ("tr_conc", "1e3"),
    ("tr_rate", "0/1"), ("tr_rate", "5/e"), ("tr_rate", "five/s"), ("tr_rate", "1/1e300"), ("tr_rate", "1/0"),
    ("tr_attempts", "inf"), ("tr_retries", "-1"), ("tr_stalls", "9999999999"),
    ("timeout", "99999999999999999999"), ("timeout", "9999999999"), ("result_ttl", "1.5"), ("failure_ttl", "forever"),
    ("tr_flow", "{nope"), ("tr_task", "t" * 1001), ("tr_limit_key", "k" * 1001),
]  # fmt: skip


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS, ids=[f"{f}={v[:12]}" for f, v in BAD_FIELDS])
def test_claim_returns_a_job_with_a_bad_field_as_poison_with_the_reason_and_claims_the_job_behind(
    conn: redis.Redis, field: str, value: str
) -> None:
    job(conn, "bad", **{field: value})
    job(conn, "good")
    conn.rpush("rq:queue:q", "bad", "good")
    reply = _claim(conn)
    bad, good = reply[:-1]
    assert bad[:10] == [b"bad", b"q", b"", 1, b"0", b"-1", b"", b"" if field == "failure_ttl" else b"900", b"0", b""]
    assert field.encode() in bad[10] and b"by hand" in bad[10]
    assert good[0] == b"good" and good[2] == b"[]" and good[10] == b""
    assert conn.hget("rq:job:bad", "status") == b"started" and conn.hget("rq:job:bad", "tr_attempts") == b"1"
    assert field == "tr_attempts" or conn.hget("rq:job:bad", field) == value.encode()  # left for the failure to show
    assert conn.hgetall("taskrail:claims:w1") == {b"bad": b"q", b"good": b"q"} and conn.zcard("rq:wip:q") == 2
    assert _limit_keys(conn) == [] and conn.llen("rq:queue:q") == 0


def test_claim_returns_a_job_without_data_as_poison(conn: redis.Redis) -> None:
    job(conn, "nodata")
    conn.hdel("rq:job:nodata", "data")
    conn.rpush("rq:queue:q", "nodata")
    [row] = _claim(conn)[:-1]
    assert row[0] == b"nodata" and row[10] == b"job has no data"
    assert conn.hget("rq:job:nodata", "status") == b"started"


def test_claim_does_not_read_data_over_the_limit_in_its_argv(conn: redis.Redis) -> None:
    job(conn, "big", data="[" + " " * 9 + "]")  # 11 bytes
    job(conn, "fits", data="[" + " " * 8 + "]")  # 10 bytes
    conn.rpush("rq:queue:q", "big", "fits")
    big, fits = _claim(conn, data_limit=10)[:-1]
    assert big[2] == b"" and big[10].startswith(b"job data is 11 bytes, over the 10-byte limit")
    assert fits[2] == b"[        ]" and fits[10] == b""


def test_claim_fails_a_job_whose_id_is_not_utf8_itself_and_keeps_it_out_of_the_registries(conn: redis.Redis) -> None:
    for job_id, ttl in ((b"bad\xff", "900"), (b"\xc3(", "never")):
        conn.hset(b"rq:job:" + job_id, mapping={"data": "[]", "status": "queued", "origin": "q", "failure_ttl": ttl})
        conn.rpush("rq:queue:q", job_id)
    job(conn, "t\u00e4sk")  # valid UTF-8: claimed as usual
    conn.rpush("rq:queue:q", "t\u00e4sk")
    reply = _claim(conn)
    assert [row[0] for row in reply[:-1]] == ["t\u00e4sk".encode()] and conn.llen("rq:queue:q") == 0
    first = conn.hgetall(b"rq:job:bad\xff")
    assert first[b"status"] == b"failed" and first[b"tr_exc_type"] == b"InvalidJob"
    assert first[b"tr_exc_message"].startswith(b"job id bad\\xff is not valid UTF-8")
    assert 0 < conn.ttl(b"rq:job:bad\xff") <= 900 and 900 < conn.ttl(b"rq:job:\xc3(") <= 7000  # default from ARGV
    assert conn.zcard("rq:failed:q") == 0 and conn.zcard("rq:wip:q") == 1
    assert conn.hgetall("taskrail:claims:w1") == {"t\u00e4sk".encode(): b"q"}
    failed = [(e["job"], e["error"]) for e in events(conn, "q") if e["event"] == "failed"]
    assert failed == [("bad\\xff", "InvalidJob"), ("\\xc3(", "InvalidJob")]


def test_claim_drops_an_id_without_a_job_hash_with_an_event(conn: redis.Redis) -> None:
    job(conn, "real")
    conn.rpush("rq:queue:q", "ghost", "real")
    reply = _claim(conn)
    assert [row[0] for row in reply[:-1]] == [b"real"]
    assert [(e["event"], e["job"]) for e in events(conn, "q")] == [("dropped", "ghost"), ("started", "real")]
    assert not conn.exists("rq:job:ghost") and text(conn.lrange("rq:queue:q", 0, -1)) == []


def test_claim_refuses_a_data_limit_that_is_not_a_number_before_popping(conn: redis.Redis) -> None:
    job(conn, "j1")
    conn.rpush("rq:queue:q", "j1")
    args = ["w1", 1, NOW, NOW_TEXT, NOW + 60, 100, "strict", 0, 0, "lots", 900, 1, 0, 0]
    with pytest.raises(redis.ResponseError, match="data limit"):
        run(conn, "claim", ["taskrail:claims:w1", "taskrail:paused", "q"], args)
    assert text(conn.lrange("rq:queue:q", 0, -1)) == ["j1"]
