"""The canvas end to end: chains, groups and chords through real workers and a real server."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis

from tasks import AsyncResult, ConfigError, GroupResult, TaskFailed, TaskRevoked, chain, chord, group
from tests import tasks_canvas as t
from tests.conftest import Processes, live_workers, wait_for
from tests.lua.helpers import run_order

# The canvas tests' workers (here, tests/test_canvas_calls.py and tests/test_canvas_guide.py, which import
# this fixture) run both task modules.
CANVAS = {"TASKRAIL_IMPORTS": "tests.tasks_canvas,tests.tasks_canvas_guide"}


@pytest.fixture
def worker(settings, procs: Processes) -> subprocess.Popen[bytes]:
    proc = procs.worker("canvas", env=CANVAS)
    wait_for(lambda: live_workers(redis.Redis.from_url(settings.redis_url)), 15, what="worker heartbeat")
    return proc


def test_chain_passes_results_through_three_steps(worker) -> None:
    result = chain(t.add.s(2, 3), t.mul.s(10), t.add.s(1)).apply_async()
    assert result.get(timeout=15) == 51
    assert result.parent.get(timeout=1) == 50 and result.parent.parent.get(timeout=1) == 5
    assert result.parent.parent.parent is None


def test_pipe_operator_and_immutable_step(worker) -> None:
    result = (t.add.s(1, 1) | t.add.si(100, 1) | t.mul.s(2)).apply_async()
    assert result.get(timeout=15) == 202


def test_group_returns_results_in_input_order(worker) -> None:
    result = group(t.square.s(i) for i in range(20)).apply_async()
    assert isinstance(result, GroupResult) and len(result) == 20
    assert result.get(timeout=15) == [i * i for i in range(20)]
    assert result.ready() and result.successful() and result.completed_count() == 20 and result.failed_count() == 0


def test_chord_callback_gets_every_result_in_input_order(worker) -> None:
    result = chord([t.ident.s(i) for i in range(30)], t.collect.s()).apply_async()
    assert result.get(timeout=15) == list(range(30))
    assert isinstance(result.parent, GroupResult) and result.parent.get(timeout=1) == list(range(30))


def test_chord_failure_policy_fail_fails_the_callback_with_the_childs_error(worker, conn: redis.Redis) -> None:
    result = chord([t.fail_if.s(i, 3) for i in range(5)], t.record.s("ran")).apply_async()
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=15)
    assert info.value.exc_type == "ValueError" and "3 is bad" in info.value.message
    assert "not run because" in info.value.message and "raise ValueError" in info.value.traceback
    assert result.status == "failed" and conn.llen("ran") == 0
    assert conn.zscore("rq:failed:canvas", result.id) is not None
    assert conn.zscore("rq:deferred:canvas", result.id) is None
    assert result.parent.get(timeout=15, propagate=False)[3].exc_type == "ValueError"


def test_chord_failure_policy_ignore_gives_successes_and_failures(worker) -> None:
    flow = chord([t.fail_if.s(i, 3) for i in range(5)], t.collect_ignoring.s(), on_child_failure="ignore")
    value = flow.apply_async().get(timeout=15)
    assert value["values"] == [0, 1, 2, 4]
    [failure] = value["failures"]
    assert failure["index"] == 3 and failure["args"] == [3, 3] and failure["task"] == "tests.tasks_canvas.fail_if"
    assert failure["exc_type"] == "ValueError" and failure["error"] == "3 is bad"


def test_chord_failure_policy_continue_puts_errors_in_their_slots(worker) -> None:
    flow = chord([t.fail_if.s(i, 3) for i in range(5)], t.collect.s(), on_child_failure="continue")
    assert flow.apply_async().get(timeout=15) == [0, 1, 2, "error:ValueError", 4]


def test_failed_chain_step_fails_every_later_step(worker, conn: redis.Redis) -> None:
    result = chain(t.fail_if.s(1, 1), t.record.s("after"), t.record.s("after")).apply_async()
    with pytest.raises(TaskFailed, match="1 is bad"):
        result.get(timeout=15)
    assert result.parent.status == "failed" and conn.llen("after") == 0


def test_nested_chain_in_group_chord_in_chain_group_in_chain(worker) -> None:
    inner_chains = group(chain(t.add.s(i, i), t.mul.s(10)) for i in range(5)).apply_async()
    assert inner_chains.get(timeout=15) == [0, 20, 40, 60, 80]
    flow = chain(t.add.s(1, 1), chord([t.mul.s(i) for i in range(4)], t.total.s()), t.add.s(1000))
    assert flow.apply_async().get(timeout=15) == 1012  # 2*0 + 2*1 + 2*2 + 2*3 + 1000
    fan = chain(t.add.s(1, 1), group(t.mul.s(i) for i in range(3)), t.total.s())
    assert fan.apply_async().get(timeout=15) == 6
    chords = group(chord([t.ident.s(i) for i in range(n)], t.total.s()) for n in (3, 4)).apply_async()
    assert chords.get(timeout=15) == [3, 6]


def test_revoking_a_group_stops_its_queued_children(settings, procs: Processes, conn: redis.Redis) -> None:
    flow = chord([t.record.si(i, "ran") for i in range(20)], t.record.si("callback", "ran"))
    callback = flow.apply_async()  # no worker yet: every child waits in the queue
    outcomes = callback.parent.revoke()
    assert outcomes == ["canceled"] * 20
    assert callback.status == "canceled"  # nothing is left to wait for
    sentinel = t.record.delay("sentinel", "ran")
    procs.worker("canvas", env=CANVAS)
    assert sentinel.get(timeout=15) == "sentinel"
    assert conn.lrange("ran", 0, -1) == [b"'sentinel'"]
    with pytest.raises(TaskRevoked):
        callback.get(timeout=1)
    assert callback.parent.failed_count() == 20


def test_flow_members_outlive_their_result_ttl_until_the_flow_is_done(worker, procs: Processes, conn) -> None:
    # short_lived keeps results 2 s; the slow member (on its own worker) makes the callback wait longer.
    procs.worker("canvas-slow", env=CANVAS)
    members = [t.short_lived.s(i) for i in range(4)] + [t.short_lived.s(4, 3.0).set(queue="canvas-slow")]
    result = chord(members, t.total.s()).apply_async()
    first = result.parent[0]
    wait_for(lambda: first.status == "finished", 10, what="first member done")
    assert conn.ttl(f"rq:job:{first.id}") == -1  # kept while the callback waits
    assert result.get(timeout=20) == 10
    ttl = conn.ttl(f"rq:job:{first.id}")
    assert 0 < ttl <= 2 and conn.ttl(f"rq:results:{first.id}") > 0
    wait_for(lambda: not conn.exists(f"rq:job:{first.id}"), 10, what="member result expired")


def test_a_chain_keeps_its_first_result_until_its_last_step_is_done(worker, conn) -> None:
    # Each step keeps results 2 s; the last one runs 3 s, well after the first step's TTL would end.
    last = chain(t.short_lived.s(1), t.short_lived.s(), t.short_lived.s(3.0)).apply_async()
    first = last.parent.parent
    wait_for(lambda: last.status == "started", 10, what="the last step to start")
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > 2.2, 5, what="the first step's own TTL to pass")
    assert not last.ready()
    assert conn.ttl(f"rq:job:{first.id}") == -1 and conn.ttl(f"rq:results:{first.id}") == -1
    assert last.get(timeout=20) == 1
    assert 0 < conn.ttl(f"rq:job:{first.id}") <= 2 and 0 < conn.ttl(f"rq:results:{first.id}") <= 2
    assert conn.exists(f"taskrail:flow:{conn.hget(f'rq:job:{first.id}', 'tr_flow_id').decode()}") == 0


def _evalsha_calls(conn: redis.Redis) -> int:
    return int(conn.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_ten_thousand_child_chord_fires_its_callback_once(settings, procs: Processes, conn: redis.Redis) -> None:
    n = 10_000
    before = _evalsha_calls(conn)
    result = chord([t.ident.s(i) for i in range(n)], t.counted_total.s("callback-runs")).apply_async()
    assert _evalsha_calls(conn) - before <= 20  # about 1,000 jobs per script call, not one call per job
    assert conn.llen("rq:queue:canvas") == n and conn.hget(f"rq:job:{result.id}", "tr_pending") == b"10000"
    for _ in range(2):
        procs.worker("canvas", env=CANVAS)
    assert result.get(timeout=50) == n * (n - 1) // 2
    assert conn.get("callback-runs") == b"1"
    assert result.parent.completed_count() == n


def test_chord_completes_once_when_a_worker_is_killed_mid_way(settings, procs: Processes, conn: redis.Redis) -> None:
    n = 300
    result = chord([t.slow_square.s(i, 0.01) for i in range(n)], t.counted_total.s("callback-runs")).apply_async()
    victim = procs.worker("canvas", env=CANVAS)
    procs.worker("canvas", env=CANVAS)
    wait_for(lambda: result.parent.completed_count() >= n // 5, 30, what="a fifth of the chord done")
    victim.kill()  # SIGKILL: its claimed jobs come back when the leader sees its heartbeat lapse
    assert result.get(timeout=60) == sum(i * i for i in range(n))
    assert conn.get("callback-runs") == b"1"
    assert result.parent.completed_count() == n
    with conn.pipeline() as pipe:
        for job_id in result.parent.ids:
            pipe.hget(f"rq:job:{job_id}", "tr_stalls")
        assert any(pipe.execute()), "no job was held by the killed worker, so nothing was recovered"


def test_send_newsletter_is_a_chord_with_one_summary(settings, procs: Processes) -> None:
    from tasks.fanout import send_newsletter

    procs.worker("default", "email", env={"TASKRAIL_IMPORTS": "tasks.emails,tasks.fanout"})
    people = ["ann@example.com", "bo@example.org", "not-an-address", "cy@example.net"]
    started = send_newsletter.delay(people, "Weekly", "<h1>News</h1>")
    ids = started.get(timeout=20)
    assert ids["recipients"] == 4
    summary = AsyncResult(ids["callback_id"]).get(timeout=30)
    assert summary["subject"] == "Weekly" and summary["sent"] == 3
    [failed] = summary["failed"]
    assert failed["to"] == "not-an-address" and failed["error"].startswith("InvalidAddress")
    assert len(list((settings.outbox_dir).glob("*.eml"))) == 3
    emails = GroupResult.restore(ids["group_id"])
    assert len(emails) == 4 and emails.completed_count() == 3 and emails.failed_count() == 1
    # The same job run again (say its worker died before settling) does not email anyone twice.
    again = send_newsletter.apply_async((people, "Weekly", "<h1>News</h1>"), job_id=started.id)
    assert again.get(timeout=20) == ids
    assert len(list((settings.outbox_dir).glob("*.eml"))) == 3


def test_a_running_member_revoked_stops_and_cancels_the_callback(worker) -> None:
    callback = chord([t.slow_square.s(3, 30.0)], t.total.s()).apply_async()
    member = callback.parent[0]
    wait_for(lambda: member.status == "started", 15, what="member started")
    assert callback.parent.revoke() == ["stopping"]
    with pytest.raises(TaskRevoked):
        callback.get(timeout=15)
    assert member.status == "canceled"


def test_countdown_on_a_later_step_applies_when_it_is_released(worker) -> None:
    result = chain(t.add.s(1, 1), t.add.s(1).set(countdown=3)).apply_async()
    wait_for(lambda: result.parent.status == "finished", 15, what="first step done")
    assert result.status == "scheduled"
    assert result.get(timeout=15) == 3


def test_a_second_settle_of_one_job_does_not_release_its_dependent_twice(settings, conn: redis.Redis) -> None:
    from tasks.core.scripting import expand

    callback = chord([t.ident.s(1), t.ident.s(2)], t.total.s()).apply_async()
    first = callback.parent.ids[0]
    conn.hset(f"rq:job:{first}", "status", "finished")
    settle = expand(
        '--- @include "includes/release_dependents"\n'
        "release_dependents({worker = 'w', maxlen = 100, now = tonumber(ARGV[2]), now_text = ARGV[3]}, ARGV[1], 'ok')"
    )
    for _ in range(2):  # e.g. a worker presumed dead settles a job its replacement already settled
        conn.eval(settle, 0, first, time.time(), "2026-01-01T00:00:00.000000Z")
    assert conn.hget(f"rq:job:{callback.id}", "tr_pending") == b"1" and callback.status == "deferred"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: chord([t.ident.s(1)], t.add.s()), "missing a required argument: 'b'"),
        (lambda: chord([t.ident.s(1)], t.total.s(), on_child_failure="ignore"), "too many positional"),
        (lambda: chord([t.ident.s(1)], t.total.s(), on_child_failure="maybe"), "on_child_failure must be one of"),
        (lambda: group(t.ident.s(1) | group(t.ident.s(), t.ident.s()), t.ident.s(2)), "a group member must give one"),
        (lambda: chain(t.ident.s(1), 2), "chain takes signatures"),
        (lambda: t.ident.s(1).set(retries=3), "unknown option 'retries'"),
        (lambda: chain(t.ident.s(1), t.add.s(2).set(priority=12)), "priority must be an integer 0 to 9"),
    ],
)
def test_a_bad_canvas_is_refused_before_anything_is_written(settings, conn: redis.Redis, build, message) -> None:
    with pytest.raises(ConfigError, match=message):
        build().apply_async()
    assert conn.dbsize() == 0


def test_a_step_revoked_with_plain_async_result_cancels_what_waits_on_it(worker, conn: redis.Redis) -> None:
    last = chain(t.slow_square.s(2, 1.0), t.add.s(1), t.add.s(2)).apply_async()
    assert AsyncResult(last.parent.id).revoke() == "canceled"  # cascades at once to the step after it
    with pytest.raises(TaskRevoked):
        last.get(timeout=15)
    assert conn.zscore("rq:deferred:canvas", last.parent.id) is None
    wait_for(lambda: last.parent.parent.status == "finished", 15, what="the running first step to finish")
    assert last.parent.status == "canceled"


def test_flow_members_keep_their_priority_in_the_queue(settings, conn: redis.Redis) -> None:
    plain = t.ident.enqueue_many([(i,) for i in range(5)])
    urgent = group(t.ident.s(i).set(priority=1) for i in range(2)).apply_async()
    order = run_order(conn, "canvas")
    assert order == urgent.ids + [r.id for r in plain]


def test_chord_through_a_worker_that_forks_a_work_horse_per_job(settings, procs: Processes) -> None:
    procs.worker("canvas", env={**CANVAS, "TASKRAIL_ISOLATION": "fork"})
    result = chord([t.square.s(i) for i in range(5)], t.total.s()).apply_async()
    assert result.get(timeout=30) == 30


def test_many_small_chords_on_racing_workers_each_fire_once(settings, procs: Processes, conn: redis.Redis) -> None:
    # Children of one chord finish at nearly the same instant on different processes and threads.
    flows = [chord([t.ident.s(i) for i in range(4)], t.counted_total.s(f"runs:{n}")) for n in range(100)]
    results = [flow.apply_async() for flow in flows]
    for _ in range(2):
        procs.worker("canvas", env={**CANVAS, "TASKRAIL_CONCURRENCY": "4"})
    assert all(r.get(timeout=60) == 6 for r in results)
    with conn.pipeline() as pipe:
        for n in range(100):
            pipe.get(f"runs:{n}")
        assert pipe.execute() == [b"1"] * 100
