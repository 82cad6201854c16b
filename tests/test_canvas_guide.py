"""Celery's Canvas guide (docs/userguide/canvas.rst), its snippets with only the imports changed, run
through a real worker and a real server, asserting the results the guide documents. ``xrange`` is ``range``
(the guide predates Python 3); each test names the section it ports.
"""

from __future__ import annotations

import itertools

import pytest
import redis

from tasks import AsyncResult, ConfigError, GroupResult, ResultSet, TaskFailed, chain, chord, group, signature
from tests.conftest import wait_for
from tests.tasks_canvas_guide import (
    add,
    create_user,
    import_contacts,
    log_error,
    log_result,
    mul,
    on_chain_error,
    raising_task,
    send_welcome_email,
    tsum,
    xsum,
)
from tests.test_canvas import worker  # noqa: F401 (the fixture: a worker on queue canvas)

EVENS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]


def logged(conn: redis.Redis, key: str, count: int) -> list[str]:
    wait_for(lambda: conn.llen(key) >= count, 15, what=f"{count} entries in {key}")
    return [v.decode() for v in conn.lrange(key, 0, -1)]


@pytest.mark.usefixtures("worker")
def test_signatures_and_partials() -> None:
    # "Signatures"
    assert (
        repr(signature("tests.tasks_canvas_guide.add", args=(2, 2), countdown=10))
        == "tests.tasks_canvas_guide.add.s(2, 2)"
    )
    s = add.signature((2, 2), {"debug": True}, countdown=10)
    assert s.args == (2, 2) and s.kwargs == {"debug": True} and s.options == {"countdown": 10}
    # "Calling the signature will execute the task inline in the current process"
    assert add(2, 2) == 4 and add.s(2, 2)() == 4
    # "Partials": added args are prepended
    partial = add.s(2)
    assert partial.delay(4).get(timeout=10) == 6
    assert partial.apply_async((4,)).get(timeout=10) == 6
    # options given to apply_async win: countdown is now 1 (not 10)
    s = add.signature((2, 2), countdown=10)
    assert s.apply_async(countdown=1).get(timeout=10) == 4
    assert s.clone(args=(4,), kwargs={"debug": True}).kwargs == {"debug": True}
    # "~sig is the same as sig.delay().get()"
    assert ~add.s(2, 2) == 4


@pytest.mark.usefixtures("worker")
def test_callbacks_link_and_children(conn: redis.Redis) -> None:
    # "Callbacks": add.apply_async((2, 2), link=add.s(8)) computes 2 + 2, then 4 + 8
    res = add.apply_async((2, 2), link=add.s(8))
    assert res.get(timeout=10) == 4
    assert res.children[0].get(timeout=10) == 12
    # "Chains": the linked task is applied with the parent's result first: mul(4, 16)
    res = add.apply_async((2, 2), link=mul.s(16))
    assert res.get(timeout=10) == 4
    assert len(res.children) == 1 and res.children[0].get(timeout=10) == 64
    # "signatures can be linked too"
    s = add.s(2, 2)
    s.link(mul.s(4))
    s.link(log_result.s())
    res = s.delay()
    assert [child.get(timeout=10) for child in res.children] == [16, 4]
    assert logged(conn, "log_result", 1) == ["4"]


@pytest.mark.usefixtures("worker")
def test_error_callbacks_get_the_failed_tasks_id(conn: redis.Redis) -> None:
    # "You can also add error callbacks using the link_error argument"
    res = raising_task.apply_async((2, 2), link_error=log_error.s())
    with pytest.raises(TaskFailed):
        res.get(timeout=10)
    assert logged(conn, "log_error", 1) == [f"{res.id} ValueError"]
    sig = raising_task.signature((2, 2), link_error=log_error.s())
    res = sig.delay()
    assert logged(conn, "log_error", 2)[1] == f"{res.id} ValueError"


@pytest.mark.usefixtures("worker")
def test_the_primitives_simple_chain_and_immutable_signatures() -> None:
    # 2 + 2 + 4 + 8
    res = chain(add.s(2, 2), add.s(4), add.s(8))()
    assert res.get(timeout=10) == 16
    assert (add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=10) == 16
    # The guide's third step is add.s(8, 8), which would get the previous result as a third argument
    # (a TypeError in Celery's worker); taskrail refuses it before sending anything, so it is .si here.
    with pytest.raises(ConfigError, match="too many positional arguments"):
        (add.si(2, 2) | add.si(4, 4) | add.s(8, 8))()
    res = (add.si(2, 2) | add.si(4, 4) | add.si(8, 8))()
    assert res.get(timeout=10) == 16
    assert res.parent.get(timeout=10) == 8
    assert res.parent.parent.get(timeout=10) == 4


@pytest.mark.usefixtures("worker")
def test_the_primitives_simple_group_and_chord() -> None:
    res = group(add.s(i, i) for i in range(10))()
    assert res.get(timeout=10) == EVENS
    res = chord((add.s(i, i) for i in range(10)), xsum.s())()
    assert res.get(timeout=10) == 90


@pytest.mark.usefixtures("worker")
def test_blow_your_mind_by_combining() -> None:
    c1 = add.s(4) | mul.s(8)
    # (16 + 4) * 8
    res = c1(16)
    assert res.get(timeout=10) == 160
    # ((4 + 16) * 2 + 4) * 8
    c2 = add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8))
    res = c2()
    assert res.get(timeout=10) == 352
    # "Chaining a group together with another task will automatically upgrade it to be a chord"
    c3 = group(add.s(i, i) for i in range(10)) | xsum.s()
    res = c3()
    assert res.get(timeout=10) == 90
    assert isinstance(chain(group(add.s(1, 1), add.s(2, 2)), xsum.s()).steps[0], chord)
    # the return value of the previous task is forwarded to all tasks in the group
    new_user_workflow = create_user.s() | group(import_contacts.s(), send_welcome_email.s())
    res = new_user_workflow.delay(username="artv", first="Art", last="Vandelay", email="art@vandelay.com")
    assert res.get(timeout=10) == ["contacts of artv", "welcome artv"]
    res = (add.s(4, 4) | group(add.si(i, i) for i in range(10)))()
    assert isinstance(res, GroupResult) and res.get(timeout=10) == EVENS
    assert res.parent.get(timeout=10) == 8


@pytest.mark.usefixtures("worker")
def test_chains_parent_attributes() -> None:
    # (4 + 4) * 8 * 10
    res = chain(add.s(4, 4), mul.s(8), mul.s(10))
    assert repr(res).count("|") == 2
    res = chain(add.s(4, 4), mul.s(8), mul.s(10))()
    assert res.get(timeout=10) == 640
    assert res.parent.get(timeout=10) == 64
    assert res.parent.parent.get(timeout=10) == 8
    assert isinstance(res.parent.parent, AsyncResult)
    # a handle made from the id alone walks back the same way (read from the server)
    assert AsyncResult(res.id).parent.parent.get(timeout=10) == 8


@pytest.mark.usefixtures("worker")
def test_groups_and_group_results() -> None:
    g = group(add.s(2, 2), add.s(4, 4))
    res = g()
    assert res.get(timeout=10) == [4, 8]
    assert len(group(add.s(i, i) for i in range(100))().get(timeout=15)) == 100
    job = group([add.s(2, 2), add.s(4, 4), add.s(8, 8), add.s(16, 16), add.s(32, 32)])
    result = job.apply_async()
    assert result.get(timeout=10) == [4, 8, 16, 32, 64]
    assert result.ready() and result.successful() and not result.failed() and not result.waiting()
    assert result.completed_count() == 5
    assert result.join(timeout=10) == [4, 8, 16, 32, 64]
    # partial arguments: 10 is passed to every member (add(10, i))
    g = group(add.s(i) for i in range(10))
    assert g(10).get(timeout=10) == [10 + i for i in range(10)]


@pytest.mark.usefixtures("worker")
def test_chords() -> None:
    assert chord(add.s(i, i) for i in range(100))(tsum.s()).get(timeout=20) == 9900
    callback = tsum.s()
    header = [add.s(i, i) for i in range(100)]
    result = chord(header)(callback)
    assert result.get(timeout=20) == 9900
    # "Error handling": the callback does not run; it fails with the member's error
    c = chord([add.s(4, 4), raising_task.s(), add.s(8, 8)], xsum.s())
    result = c()
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=10)
    assert info.value.exc_type == "ValueError" and "something something" in info.value.message
    # "the rest of the tasks will still execute"
    assert result.parent.get(timeout=10, propagate=False)[2] == 16


@pytest.mark.usefixtures("worker")
def test_map_and_starmap(conn: redis.Redis) -> None:
    assert ~xsum.map([range(10), range(100)]) == [45, 4950]
    assert ~add.starmap(zip(range(10), range(10), strict=True)) == EVENS
    # "call the starmap after 10 seconds"
    res = add.starmap(zip(range(10), range(10), strict=True)).apply_async(countdown=10)
    assert res.state == "SCHEDULED"
    res.revoke()


@pytest.mark.usefixtures("worker")
def test_chunks(conn: redis.Redis) -> None:
    res = add.chunks(zip(range(100), range(100), strict=True), 10)()
    assert res.get(timeout=15) == [[2 * (10 * row + i) for i in range(10)] for row in range(10)]
    assert res.get(timeout=1)[0] == EVENS
    # "convert chunks to a group ... skew the countdown of each task by increments of one"
    g = add.chunks(zip(range(100), range(100), strict=True), 10).group()
    res = g.skew(start=1, stop=10)()
    runs_at = [conn.zscore("rq:scheduled:canvas", job_id) for job_id in res.ids]
    steps = [round(b - a) for a, b in itertools.pairwise(runs_at)]
    assert steps == [1] * 9
    res.revoke()


@pytest.mark.usefixtures("worker")
def test_chain_errback_runs_once_wherever_the_error_is(conn: redis.Redis) -> None:
    failing = (add.s(2, 2) | raising_task.s() | add.s(1) | mul.s(2)).on_error(log_error.s())
    res = failing()
    with pytest.raises(TaskFailed):
        res.get(timeout=10)
    raised = res.parent.parent.id
    assert logged(conn, "log_error", 1) == [f"{raised} ValueError"]
    first = chain(raising_task.s(), add.s(1), add.s(2))
    first.link_error(on_chain_error.s())
    with pytest.raises(TaskFailed):
        first().get(timeout=10)
    assert logged(conn, "on_chain_error", 1)[0].endswith("something something")
    assert add.delay(0, 0).get(timeout=10) == 0  # one worker, in order: every errback sent so far has run
    assert conn.llen("log_error") == 1 and conn.llen("on_chain_error") == 1


@pytest.mark.usefixtures("worker")
def test_freeze_gives_ids_before_sending() -> None:
    sig = add.s(2, 2)
    frozen = sig.freeze()
    assert sig.delay().id == frozen.id and frozen.get(timeout=10) == 4
    g = group(add.s(i, i) for i in range(3))
    frozen_group = g.freeze()
    res = g()
    assert res.id == frozen_group.id and res.ids == frozen_group.ids and frozen_group.get(timeout=10) == [0, 2, 4]
    c = add.s(1, 1) | mul.s(3)
    last = c.freeze()
    assert c().id == last.id and last.get(timeout=10) == 6 and last.parent.get(timeout=10) == 2


@pytest.mark.usefixtures("worker")
def test_group_in_a_group_is_flattened() -> None:
    res = group(group(add.s(1, 1), add.s(2, 2)), add.s(3, 3))()
    assert len(res) == 3 and res.get(timeout=10) == [2, 4, 6]


@pytest.mark.usefixtures("worker")
def test_group_result_save_restore_and_result_set() -> None:
    res = group(add.s(i, i) for i in range(4))()
    res.save()
    again = GroupResult.restore(res.id)
    assert again.ids == res.ids and again.join(timeout=10) == [0, 2, 4, 6]
    res.delete()
    with pytest.raises(KeyError):
        GroupResult.restore(res.id)
    rs = ResultSet([add.delay(1, 1), add.delay(2, 2)])
    rs.add(add.delay(3, 3))
    assert len(rs) == 3 and rs.join(timeout=10) == [2, 4, 6] and rs.completed_count() == 3
    # a chord's callback, from its id alone: its parent is the header as a ResultSet
    callback = chord([add.s(1, 1), add.s(2, 2)], xsum.s())()
    assert callback.get(timeout=10) == 6
    parent = AsyncResult(callback.id).parent
    assert isinstance(parent, ResultSet) and parent.get(timeout=10) == [2, 4]
