"""``Signature``: one task call to make later, Celery's ``add.s(2)``; ``signature()`` makes one from a task.

Celery's calling conventions: ``sig()`` runs it here and now, ``sig.delay(4)`` and ``sig.apply_async((4,))``
send it with ``4`` put first (a partial), ``~sig`` sends it and waits; ``clone``, ``link``, ``link_error``,
``on_error`` and ``freeze`` as in Celery. In a flow it receives the previous result first, unless it is
immutable (``add.si(2)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError
from tasks.core import validate
from tasks.core.canvas_node import Built, Handle, Node
from tasks.core.celery_calls import WORKER_OPTIONS
from tasks.core.client import Client
from tasks.core.flowbuild import FLOW_OPTIONS, Mode, Plan, Policy
from tasks.core.groups import FlowResult
from tasks.core.protocol import new_job_id
from tasks.core.registry import lookup

if TYPE_CHECKING:
    from tasks.core.result import AsyncResult
    from tasks.core.task import Task

__all__ = ["SIGNATURE_OPTIONS", "Signature", "signature"]

SIGNATURE_OPTIONS = (*FLOW_OPTIONS, *WORKER_OPTIONS)


@dataclass(frozen=True, eq=False)
class Signature(Node):
    """One task call to make later: ``add.s(2)``."""

    task: Task[Any, Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}.{'si' if self.immutable else 's'}({', '.join(parts)})"

    @property
    def name(self) -> str:
        return self.task.name

    def set(self, **options: Any) -> Signature:
        """A copy with options: ``queue``, ``priority``, ``countdown``, ``job_id`` (or Celery's ``task_id``),
        and Celery's per-call ``link``, ``link_error``, ``expires``, ``headers``, ``ignore_result``,
        ``soft_time_limit``, ``shadow``."""
        if "task_id" in options:
            options["job_id"] = options.pop("task_id")
        unknown = sorted(set(options) - set(SIGNATURE_OPTIONS))
        if unknown:
            raise ConfigError(f"{self.task.name}: unknown option {unknown[0]!r}; known: {', '.join(SIGNATURE_OPTIONS)}")
        if options.get("queue"):  # an empty queue means the task's own, as in apply_async
            validate.queue_name(options["queue"], self.task.name)
        validate.priority(options.get("priority"), self.task.name)
        validate.countdown(options.get("countdown"), self.task.name)
        return replace(self, options={**self.options, **options})

    def clone(self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, **options: Any) -> Signature:
        """A copy with ``args`` put first, ``kwargs`` merged (new ones win) and ``options`` set."""
        copy = self._partial(tuple(args), dict(kwargs or {}))
        return copy.set(**options) if options else replace(copy, options=dict(copy.options))

    def _partial(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Signature:
        if self.immutable or not (args or kwargs):
            return self
        return replace(self, args=args + self.args, kwargs={**self.kwargs, **kwargs})

    def _map(self, change: Callable[[Signature], Signature]) -> Signature:
        return change(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now, as Celery does (``add.s(2, 2)()`` is 4); extra args go first."""
        call = self._partial(args, kwargs)
        return self.task(*call.args, **call.kwargs)

    def apply_async(self, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
                    client: Client | None = None, **options: Any) -> AsyncResult:  # fmt: skip
        """Enqueue this call alone; extra ``args`` go first (unless immutable), options override the signature's."""
        call = self._partial(tuple(args), dict(kwargs or {}))
        merged = {**self.options, **options}
        return self.task.apply_async(call.args, dict(call.kwargs), client=client, **merged)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

    def _append(self, option: str, sig: Signature) -> Signature:
        if not isinstance(sig, Signature):
            raise ConfigError(f"{self.task.name}: {option} takes a signature like on_done.s(), got {sig!r}")
        # In place, as Celery: the signature a caller holds gets the callback.
        object.__setattr__(self, "options", {**self.options, option: [*self.options.get(option, ()), sig]})
        return sig

    def link(self, callback: Signature) -> Signature:
        """After success, send ``callback`` with the result put first (unless immutable). Returns ``callback``."""
        return self._append("link", callback)

    def link_error(self, errback: Signature) -> Signature:
        """After a failure for good, call ``errback``: a task taking ``(request, exc, traceback)`` runs in the
        worker, a one-parameter task is sent with the failed job's id. Returns ``errback``."""
        return self._append("link_error", errback)

    def freeze(self) -> FlowResult:
        """Give this call its job id now (kept by later applies); returns the handle ``apply_async`` will give."""
        job_id = self.options.get("job_id")
        if not job_id:
            job_id = new_job_id()
            object.__setattr__(self, "options", {**self.options, "job_id": job_id})
        return FlowResult(job_id)

    @property
    def id(self) -> str | None:
        """The job id given by ``freeze()`` or ``set(job_id=)``, else None."""
        return self.options.get("job_id")

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        job_id = plan.add(self, parents, mode, policy)
        return [job_id], FlowResult(job_id, plan.client, parent=before), False


def signature(task: Task[Any, Any] | str, args: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None,
              *, immutable: bool = False, **options: Any) -> Signature:  # fmt: skip
    """A signature from a task or a registered task's name.

    Raises:
        ConfigError: no task of that name is registered in this process.
    """
    if isinstance(task, str):
        found = lookup(task)
        if found is None:
            raise ConfigError(f"no task named {task!r} is registered here; import the module that defines it first")
        task = found
    return Signature(task, tuple(args), dict(kwargs or {}), {}, immutable).set(**options)
