"""RQ's ``get_current_job()`` inside a task: the running job as an ``rq.job.Job``, built only when used.

RQ sets its context variable ``rq.job._current_job`` in ``Job.perform``; taskrail runs tasks itself, so
``workers.runner.run_job`` sets it around the task call. The object it holds costs next to nothing until a task
touches it: the first use builds the ``Job`` (id, origin and connection from the claim, no round trip),
and the first read of a field only the job hash holds (``meta``, ``args``, ``description``, ...) loads
the hash once, as ``Job.fetch`` would. So ``job.meta["x"] = 1; job.save_meta()`` keeps the stored meta, and
a field the task assigns before that load (``job.meta = {"x": 1}; job.save_meta()``) keeps its value.
"""

from __future__ import annotations

from typing import Any

import redis
from rq.job import Job
from rq.serializers import JSONSerializer

__all__ = ["RunningJob"]

# Built from the claim, so reading them costs no round trip; every other field loads the hash.
FROM_CLAIM = frozenset({"_id", "connection", "serializer", "origin", "log"})


class RunningJob(Job):
    """The job a task runs for, as ``rq.get_current_job()`` returns it; see the module docstring."""

    def __init__(self, job_id: str, queue: str, connection: redis.Redis) -> None:
        # Job.__init__ costs about 20 us, a tenth of a no-op job: it runs at first use (``__getattr__``).
        self.__dict__["_tr_pending"] = (job_id, queue, connection)

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__
        if name.startswith("__"):  # copy, pickle and friends probing: not a use
            raise AttributeError(name)
        if "_tr_pending" in state:
            job_id, queue, connection = state.pop("_tr_pending")
            Job.__init__(self, job_id, connection=connection, serializer=JSONSerializer)
            self.origin = queue
            state["_tr_unloaded"] = {k: state.pop(k) for k in list(state) if k not in FROM_CLAIM}
        elif "_tr_unloaded" in state:
            kept = {k: state[k] for k in state.pop("_tr_assigned", ()) if k in state}
            self.refresh()
            state.update(kept)  # what the task assigned before this load stays (``job.meta = {...}``)
        else:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_tr_unloaded" in self.__dict__:  # assigned before the hash is loaded: the load must keep it
            self.__dict__.setdefault("_tr_assigned", set()).add(name)
        super().__setattr__(name, value)

    def restore(self, raw_data: dict[bytes, bytes]) -> None:
        """Load the hash (``refresh()``, on first use or called by the task), over the defaults of a new Job."""
        for key, value in self.__dict__.pop("_tr_unloaded", {}).items():
            self.__dict__.setdefault(key, value)  # first: restore() may read what it sets
        super().restore(raw_data)
