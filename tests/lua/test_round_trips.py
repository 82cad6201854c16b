"""Calling a command costs one EVALSHA in the caller's round trip: no SCRIPT LOAD once the server knows it,
and after a SCRIPT FLUSH only the calls the server refused are sent again."""

from __future__ import annotations

import redis

from tasks import chord
from tests import tasks_canvas as t


def _calls(conn: redis.Redis, command: str) -> int:
    return int(conn.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_flow_write_and_revoke_send_no_script_load_once_the_server_knows_the_scripts(
    settings, conn: redis.Redis
) -> None:
    chord([t.ident.s(1)], t.total.s()).apply_async().parent.revoke()  # the server learns both scripts
    conn.config_resetstat()
    result = chord([t.ident.s(i) for i in range(3)], t.total.s()).apply_async()
    assert result.parent.revoke() == ["canceled"] * 3
    assert _calls(conn, "script|load") == 0 and _calls(conn, "script") == 0
    assert _calls(conn, "evalsha") == 2  # one flow_enqueue call, one flow_revoke call


def test_after_a_script_flush_a_flow_write_loads_once_and_writes_once(settings, conn: redis.Redis) -> None:
    conn.script_flush()
    conn.config_resetstat()
    result = chord([t.ident.s(i) for i in range(3)], t.total.s()).apply_async()
    assert conn.hget(f"rq:job:{result.id}", "tr_pending") == b"3" and conn.llen("rq:queue:canvas") == 3
    # The EVALSHA the server no longer knew wrote nothing; the call went again once, with its source (EVAL).
    assert _calls(conn, "eval") == 1 and _calls(conn, "script|load") + _calls(conn, "script") == 0
