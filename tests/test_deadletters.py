"""Dead letters: failed jobs kept with arguments and traceback; requeue and purge through the API and the CLI."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tasks import AsyncResult, TaskFailed
from tasks.core.deadletters import DeadLetters
from tests import tasks_observe as ot
from tests.conftest import BIN, Processes, live_workers, wait_for

OBS = {"TASKRAIL_IMPORTS": "tests.tasks_observe"}


@pytest.fixture
def worker(settings, procs: Processes, conn: redis.Redis):
    proc = procs.worker("obs", env=OBS)
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")
    return proc


def taskrail(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(BIN / "taskrail"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def fail(result: AsyncResult) -> TaskFailed:
    with pytest.raises(TaskFailed) as info:
        result.get(timeout=15)
    return info.value


def test_failed_job_is_kept_with_arguments_exception_and_traceback(worker, settings) -> None:
    result = ot.charge.delay("4111-1111", 30, api_key="sk-live")
    fail(result)
    letters = DeadLetters()
    [letter] = letters.jobs("obs")
    assert (letter.id, letter.queue, letter.task) == (result.id, "obs", ot.charge.name)
    assert letter.args == ["4111-1111", 30] and letter.kwargs == {"api_key": "sk-live"}
    assert letter.exc_type == "ValueError" and letter.message == "card declined for amount 30"
    assert 'raise ValueError(f"card declined' in letter.traceback
    assert letter.attempts == 1
    assert letter.expires_at - time.time() == pytest.approx(settings.failure_ttl_s, abs=60)
    assert letters.get(result.id) == letter and letters.count() == 1 and letters.queues() == ["obs"]


def test_requeue_one_runs_it_again_and_keeps_its_history(worker, conn: redis.Redis, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    result = ot.heals.delay(str(flag))
    fail(result)
    letters = DeadLetters()
    flag.write_text("the fix is deployed")
    assert letters.requeue(result.id) is True
    assert result.get(timeout=15) == "healed"
    assert result.attempts == 2  # the history is kept
    assert letters.count("obs") == 0 and letters.requeue(result.id) is False
    kinds = [e[b"event"] for _i, e in conn.xrange("taskrail:events:obs") if e[b"job"] == result.id.encode()]
    assert kinds == [b"enqueued", b"started", b"failed", b"requeued", b"started", b"completed"]


def test_cli_lists_requeues_all_and_purges(worker, env: dict[str, str], conn: redis.Redis, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    healing = [ot.heals.delay(str(flag)) for _ in range(2)]
    for result in healing:
        fail(result)
    listing = taskrail(env, "failed", "obs").stdout
    assert "2 failed jobs in queue 'obs'" in listing and "RuntimeError" in listing and healing[0].id in listing
    as_json = [json.loads(line) for line in taskrail(env, "failed", "--json").stdout.splitlines()]
    assert {row["id"] for row in as_json} == {r.id for r in healing}
    assert "Traceback" in taskrail(env, "failed", "--traceback").stdout

    flag.write_text("fixed")
    assert "requeued 2 failed jobs" in taskrail(env, "failed", "requeue", "--all").stdout
    assert [r.get(timeout=15) for r in healing] == ["healed", "healed"]

    doomed = ot.charge.delay("0000", 1)
    fail(doomed)
    assert "purged 1 failed job" in taskrail(env, "failed", "purge", "obs").stdout
    assert not conn.exists(f"rq:job:{doomed.id}") and conn.zcard("rq:failed:obs") == 0
    assert "no failed jobs" in taskrail(env, "failed").stdout


def test_cli_requeue_of_an_unknown_id_says_so(settings, env: dict[str, str]) -> None:
    out = subprocess.run([str(BIN / "taskrail"), "failed", "requeue", "nope"], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode != 0 and "not a failed job" in out.stdout


def test_expired_dead_letters_are_not_listed(settings, conn: redis.Redis) -> None:
    result = ot.charge.delay("1", 1)
    conn.hset(f"rq:job:{result.id}", mapping={"status": "failed", "tr_exc_type": "ValueError"})
    conn.zadd("rq:failed:obs", {result.id: 1.0})  # expired long ago
    assert DeadLetters().jobs("obs") == [] and conn.zcard("rq:failed:obs") == 0
