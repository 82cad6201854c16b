"""RQ's job API inside taskrail tasks, against real workers: get_current_job, Queue.enqueue(task),
@rq.decorators.job, JobTimeoutException and job callbacks."""

from __future__ import annotations

import inspect
import itertools
import json
import pickle

import pytest
import redis
from rq import Callback, Queue
from rq.decorators import job as rq_job
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import resolve_function_reference

from tasks import AsyncResult, Task, TaskNotRegistered, TaskTimeout
from tests import tasks_rqapi
from tests.conftest import Processes, live_workers, wait_for
from workers.current import RunningJob

IMPORTS = {"TASKRAIL_IMPORTS": "tests.tasks_rqapi"}
MODES = {
    "inline": {},
    "threads": {"TASKRAIL_CONCURRENCY": "4"},
    "fork": {"TASKRAIL_ISOLATION": "fork"},
}


def _start(procs: Processes, conn: redis.Redis, extra: dict[str, str]) -> None:
    procs.worker("rqapi", env={**IMPORTS, **extra})
    wait_for(lambda: live_workers(conn), 15, what="worker heartbeat")


@pytest.fixture
def queue(settings, conn: redis.Redis) -> Queue:
    return Queue("rqapi", connection=conn, serializer=JSONSerializer)


@pytest.fixture
def worker(settings, procs: Processes, conn: redis.Redis) -> None:
    _start(procs, conn, {})


def _callbacks(conn: redis.Redis, count: int) -> list[list[object]]:
    wait_for(lambda: conn.llen("callbacks") >= count, 15, what=f"{count} callback records")
    return [json.loads(raw) for raw in conn.lrange("callbacks", 0, -1)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", ["current", "current_async"])
def test_get_current_job_is_the_running_job_and_saves_meta(
    mode: str, func: str, settings, procs: Processes, conn: redis.Redis, queue: Queue
) -> None:
    _start(procs, conn, MODES[mode])
    task = getattr(tasks_rqapi, func)
    job = queue.enqueue(task, f"seen:{mode}", meta={"before": "kept"})
    assert AsyncResult(job.id).get(timeout=15) == "ok"
    seen = json.loads(conn.get(f"seen:{mode}"))
    assert seen["id"] == job.id and seen["origin"] == "rqapi" and seen["func"] == task.name
    assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).meta == {"before": "kept", "seen": 1}
    # taskrail's own enqueue too
    assert task.delay(f"again:{mode}").get(timeout=15) == "ok"


def test_meta_assigned_before_it_was_loaded_is_what_save_meta_stores(worker, conn: redis.Redis, queue: Queue) -> None:
    job = queue.enqueue(tasks_rqapi.replace_meta, 7, meta={"before": "replaced"})
    AsyncResult(job.id).get(timeout=15)
    assert Job.fetch(job.id, connection=conn, serializer=JSONSerializer).meta == {"replaced": 7}


def test_queue_enqueue_stores_a_task_by_its_registered_name(worker, queue: Queue) -> None:
    job = queue.enqueue(tasks_rqapi.mul, 6, 7)
    assert job.func_name == "tests.tasks_rqapi.mul"
    assert AsyncResult(job.id).get(timeout=15) == 42
    renamed = queue.enqueue(tasks_rqapi.renamed, 1)
    assert renamed.func_name == "rqapi.renamed"
    assert AsyncResult(renamed.id).get(timeout=15) == 2


def test_rq_job_decorator_on_a_registered_task(worker, conn: redis.Redis, queue: Queue) -> None:
    decorated = rq_job(queue, connection=conn)(tasks_rqapi.task_for_decorator)
    job = decorated.delay(3, 5)
    assert job.func_name == "tests.tasks_rqapi.task_for_decorator"
    assert AsyncResult(job.id).get(timeout=15) == 15


def test_except_job_timeout_exception_catches_a_time_limit(worker, conn: redis.Redis) -> None:
    assert tasks_rqapi.catch_timeout.delay("timeout").get(timeout=15) == "caught"
    assert conn.get("timeout") == b"TaskTimeout"


@pytest.mark.parametrize("mode", ["inline", "fork"])
def test_a_timed_out_jobs_traceback_names_rqs_timeout_class(mode: str, settings, procs: Processes,
                                                             conn: redis.Redis, queue: Queue) -> None:  # fmt: skip
    _start(procs, conn, MODES[mode])
    job = queue.enqueue(tasks_rqapi.nap, 30, job_timeout=1)
    wait_for(lambda: job.get_status(refresh=True) == "failed", 20, what="timed-out job failed")
    last = (
        Job.fetch(job.id, connection=conn, serializer=JSONSerializer)
        .latest_result()
        .exc_string.strip()
        .splitlines()[-1]
    )
    assert last.startswith("rq.timeouts.JobTimeoutException (TaskTimeout): job ") and "time limit" in last


@pytest.mark.parametrize("mode", MODES)
def test_success_and_failure_callbacks_run_once_with_rq_arguments(
    mode: str, settings, procs: Processes, conn: redis.Redis, queue: Queue
) -> None:
    _start(procs, conn, MODES[mode])
    both = {"on_success": Callback(tasks_rqapi.on_ok), "on_failure": Callback(tasks_rqapi.on_fail)}
    ok = queue.enqueue(tasks_rqapi.mul, 2, 3, **both)
    bad = queue.enqueue(tasks_rqapi.fail, "broken", **both)
    by_task = queue.enqueue(tasks_rqapi.mul, 1, 1, on_success=Callback(tasks_rqapi.task_as_callback))
    records = _callbacks(conn, 3)
    assert ["success", ok.id, 6, "tests.tasks_rqapi.mul", "finished"] in records  # finished, as RQ 3 shows it
    if mode == "fork":  # the exception stayed in the work-horse: a TaskFailed carries it
        assert ["failure", bad.id, "TaskFailed", f"task {bad.id} failed: ValueError: broken"] in records
    else:
        assert ["failure", bad.id, "ValueError", "broken"] in records
    assert ["task-callback", by_task.id, 1] in records
    assert len(records) == 3
    assert AsyncResult(bad.id).state == "FAILURE"


def test_stopped_callback_runs_for_a_revoked_running_job(worker, conn: redis.Redis, queue: Queue) -> None:
    job = queue.enqueue(tasks_rqapi.nap, 30, on_stopped=Callback(tasks_rqapi.on_stop))
    wait_for(lambda: AsyncResult(job.id).state == "STARTED", 15, what="the job to start")
    AsyncResult(job.id).revoke()
    assert _callbacks(conn, 1) == [["stopped", job.id]]


@pytest.mark.parametrize("mode", MODES)
def test_a_success_callback_reads_the_job_hash_only_when_it_needs_it(
    mode: str, settings, procs: Processes, conn: redis.Redis, queue: Queue
) -> None:
    _start(procs, conn, MODES[mode])
    with_meta = queue.enqueue(tasks_rqapi.current, "k1", on_success=Callback(tasks_rqapi.meta_seen))
    assert _callbacks(conn, 1) == [["meta", with_meta.id, 1]]  # the meta the task saved as it ran

    # The claim brought the callback's name and timeout: one that reads only job.id never read the job's hash
    # (under Job.fetch it had been read whole before the callback ran).
    plain = queue.enqueue(tasks_rqapi.mul, 3, 3, on_success=Callback(tasks_rqapi.id_only))
    assert _callbacks(conn, 2)[1] == ["id-only", plain.id, 9, "finished", True]


def test_unregistered_success_callback_is_refused_and_fails_the_job(worker, conn: redis.Redis, queue: Queue) -> None:
    job = queue.enqueue(tasks_rqapi.mul, 4, 4, on_success=Callback(tasks_rqapi.not_registered))
    with pytest.raises(TaskNotRegistered, match=r"callback 'tests\.tasks_rqapi\.not_registered' is not registered"):
        AsyncResult(job.id).get(timeout=15)
    assert conn.llen("callbacks") == 0  # it never ran
    assert job.get_status(refresh=True) == "failed"  # as under RQ, where importing it would have failed


@pytest.mark.parametrize("mode", MODES)
def test_a_success_callback_that_raises_fails_the_job_as_rq_does(
    mode: str, settings, procs: Processes, conn: redis.Redis, queue: Queue
) -> None:
    _start(procs, conn, MODES[mode])
    job = queue.enqueue(tasks_rqapi.mul, 2, 2, on_success=Callback(tasks_rqapi.raising_callback),
                        on_failure=Callback(tasks_rqapi.on_fail))  # fmt: skip
    with pytest.raises(RuntimeError, match="the callback broke"):
        AsyncResult(job.id).get(timeout=15)
    assert job.get_status(refresh=True) == "failed"
    assert _callbacks(conn, 1) == [["failure", job.id, "RuntimeError", "the callback broke"]]  # then on_failure
    assert job.id in FailedJobRegistry("rqapi", connection=conn).get_job_ids()
    assert job.id not in FinishedJobRegistry("rqapi", connection=conn).get_job_ids()


def test_success_callback_past_its_timeout_is_stopped_and_fails_the_job(worker, conn: redis.Redis,
                                                                         queue: Queue) -> None:  # fmt: skip
    job = queue.enqueue(tasks_rqapi.mul, 1, 2, on_success=Callback(tasks_rqapi.slow_callback, timeout=1))
    with pytest.raises(TaskTimeout, match="passed its timeout of 1s"):
        AsyncResult(job.id).get(timeout=15)
    assert tasks_rqapi.mul.delay(2, 2).get(timeout=15) == 4  # the worker carries on


def test_a_failure_callback_that_raises_is_recorded_and_the_failure_stands(worker, conn: redis.Redis,
                                                                             queue: Queue) -> None:  # fmt: skip
    job = queue.enqueue(tasks_rqapi.fail, "own", on_failure=Callback(tasks_rqapi.raising_failure_callback))
    error = wait_for(lambda: conn.hget(f"rq:job:{job.id}", "tr_callback_error"), 15, what="the recorded error")
    assert b"the failure callback broke" in error
    with pytest.raises(ValueError, match="own"):
        AsyncResult(job.id).get(timeout=5)


def test_running_job_loads_its_hash_only_when_a_field_needs_it(conn: redis.Redis, queue: Queue) -> None:
    stored = queue.enqueue("tests.tasks_rqapi.mul", 1, 2, meta={"k": 1}, description="desc")
    job = RunningJob(stored.id, "rqapi", conn)
    assert job.id == stored.id and job.origin == "rqapi"
    assert "meta" not in job.__dict__  # id and origin came from the claim: nothing read yet
    job.meta["z"] = 2
    job.save_meta()
    assert (job.description, job.args, job.func_name) == ("desc", [1, 2], "tests.tasks_rqapi.mul")
    again = RunningJob(stored.id, "rqapi", conn)
    again.refresh()  # called by a task first: later reads of other fields keep what it loaded
    again.meta["q"] = 3
    assert again.get_status(refresh=False) == "queued" and again.meta == {"k": 1, "z": 2, "q": 3}
    again.save_meta()
    assert Job.fetch(stored.id, connection=conn, serializer=JSONSerializer).meta == {"k": 1, "z": 2, "q": 3}


def test_a_task_is_a_function_to_rq_and_still_a_task() -> None:
    assert resolve_function_reference(tasks_rqapi.mul) == (None, "tests.tasks_rqapi.mul")
    assert resolve_function_reference(tasks_rqapi.renamed) == (None, "rqapi.renamed")
    assert Callback(tasks_rqapi.task_as_callback).name == "tests.tasks_rqapi.task_as_callback"
    assert type(tasks_rqapi.mul) is Task and isinstance(tasks_rqapi.mul, Task)
    assert list(inspect.signature(tasks_rqapi.mul).parameters) == ["a", "b"]
    assert inspect.iscoroutinefunction(tasks_rqapi.current_async) and not inspect.iscoroutinefunction(tasks_rqapi.mul)
    assert pickle.loads(pickle.dumps(tasks_rqapi.renamed)) is tasks_rqapi.renamed
    assert tasks_rqapi.mul(6, 7) == 42


def test_each_job_of_a_batch_keeps_its_own_started_at_and_ended_at(settings, procs: Processes, conn: redis.Redis,
                                                                   queue: Queue) -> None:  # fmt: skip
    # Short jobs enqueued before the worker starts: it claims many per round trip, and the claim's time would be
    # the same for all of them; yet each started when the one before it ended (RQ's test_dequeue_round_robin
    # orders jobs by it).
    jobs = [queue.enqueue(tasks_rqapi.mul, i, 2) for i in range(40)]
    jobs.append(queue.enqueue(tasks_rqapi.fail, "boom"))
    _start(procs, conn, {})
    wait_for(lambda: jobs[-1].get_status(refresh=True) == "failed", 20, what="the jobs done")
    runs = [Job.fetch(j.id, connection=conn, serializer=JSONSerializer) for j in jobs]
    assert [r.get_status() for r in runs] == ["finished"] * 40 + ["failed"]
    for run in runs:
        assert run.started_at is not None and run.ended_at is not None and run.ended_at >= run.started_at, run.id
    assert all(b.started_at > a.started_at for a, b in itertools.pairwise(runs)), [r.started_at for r in runs]
    assert all(b.started_at >= a.ended_at for a, b in itertools.pairwise(runs))  # one after the other
