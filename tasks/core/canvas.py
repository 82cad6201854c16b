"""The canvas: ``signature``, ``chain``, ``group`` and ``chord``, Celery's names for composing tasks.

Every step is an ordinary RQ job (see tasks/core/lua/includes/release_dependents.lua for how waiting works)::

    (fetch.s(url) | parse.s() | store.s()).apply_async()          # each step gets the previous result
    group(resize.s(p) for p in paths).apply_async().get()          # results in input order
    chord([send_email.s(to, subject) for to in people], summary.s(), on_child_failure="ignore")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Union

from config.errors import ConfigError
from tasks.core import validate
from tasks.core.client import Client, default_client
from tasks.core.flowbuild import FLOW_OPTIONS, POLICIES, Mode, Plan, Policy
from tasks.core.groups import FlowResult, GroupResult
from tasks.core.protocol import new_job_id
from tasks.core.registry import lookup

if TYPE_CHECKING:
    from tasks.core.result import AsyncResult
    from tasks.core.task import Task

__all__ = ["Signature", "chain", "chord", "group", "signature"]

Handle = Union[FlowResult, GroupResult]  # noqa: UP007 (a runtime alias)
# What a node's build returns: its terminal job ids, its result handle, whether its value is a list.
Built = tuple[list[str], Handle, bool]


class _Node:
    """What every canvas element shares: ``|``, ``delay()`` and ``apply_async()`` of the whole flow."""

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        raise NotImplementedError

    def __or__(self, other: _Node) -> _Node:
        if not isinstance(other, _Node):
            return NotImplemented
        return chain(self, other)

    def apply_async(self, *, client: Client | None = None) -> Any:
        """Write every job of the flow in a few round trips; returns the flow's result handle.

        Raises:
            ConfigError: a call that does not fit its task, or bad options; nothing is written.
            EnqueueError: arguments that are not JSON or too large; nothing is written.
        """
        if client is None:
            client = default_client()
        plan = Plan(client)
        _, handle, _ = self._build(plan, [], "", "fail", None)
        plan.write()
        return handle

    def delay(self) -> Any:
        return self.apply_async()


@dataclass(frozen=True, eq=False)
class Signature(_Node):
    """One task call to make later: ``add.s(2)``. In a flow it receives the previous result first,
    unless it is immutable (``add.si(2)``)."""

    task: Task[Any, Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}.{'si' if self.immutable else 's'}({', '.join(parts)})"

    def set(self, **options: Any) -> Signature:
        """A copy with options: ``queue``, ``priority``, ``countdown``, ``job_id``."""
        unknown = sorted(set(options) - set(FLOW_OPTIONS))
        if unknown:
            raise ConfigError(f"{self.task.name}: unknown option {unknown[0]!r}; known: {', '.join(FLOW_OPTIONS)}")
        if options.get("queue"):  # an empty queue means the task's own, as in apply_async
            validate.queue_name(options["queue"], self.task.name)
        validate.priority(options.get("priority"), self.task.name)
        validate.countdown(options.get("countdown"), self.task.name)
        return replace(self, options={**self.options, **options})

    def apply_async(
        self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, *, client: Client | None = None,
        **options: Any,
    ) -> AsyncResult:  # fmt: skip
        """Enqueue this call alone; extra ``args`` go first (unless immutable), like Celery's partials."""
        front = () if self.immutable else tuple(args)
        merged = {**self.options, **options}
        return self.task.apply_async(front + self.args, {**self.kwargs, **(kwargs or {})}, client=client, **merged)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult:
        return self.apply_async(args, kwargs)

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


def _nodes(what: str, items: tuple[Any, ...]) -> tuple[_Node, ...]:
    if len(items) == 1 and not isinstance(items[0], _Node) and isinstance(items[0], Iterable):
        items = tuple(items[0])
    for item in items:
        if not isinstance(item, _Node):
            raise ConfigError(f"{what} takes signatures like add.s(1) (or chains, groups, chords), got {item!r}")
    return items


class chain(_Node):
    """Steps run one after another, each receiving the previous step's result; ``a.s() | b.s()``."""

    def __init__(self, *steps: _Node | Iterable[_Node]) -> None:
        flat: list[_Node] = []
        step: _Node
        for step in _nodes("chain", steps):
            flat += step.steps if isinstance(step, chain) else [step]
        if not flat:
            raise ConfigError("chain needs at least one step")
        self.steps: tuple[_Node, ...] = tuple(flat)

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)

    def apply_async(self, *, client: Client | None = None) -> Handle:
        """Returns the last step's result (``.parent`` walks back), or a GroupResult if it ends in a group."""
        return super().apply_async(client=client)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        built: Built = (parents, before, False)  # type: ignore[assignment]
        for index, step in enumerate(self.steps):
            terminals, handle, many = built
            if index:
                mode, policy = ("many" if many else "one"), "fail"
            built = step._build(plan, terminals, mode, policy, handle)
        return built


class group(_Node):
    """Members run in parallel; the result is the list of their results in input order."""

    def __init__(self, *members: _Node | Iterable[_Node], group_id: str | None = None) -> None:
        self.members = _nodes("group", members)
        self.group_id = group_id

    def __repr__(self) -> str:
        return f"group({', '.join(repr(m) for m in self.members)})"

    def __or__(self, other: _Node) -> _Node:
        return chord(self, other) if isinstance(other, Signature) else super().__or__(other)

    def apply_async(self, *, client: Client | None = None) -> GroupResult:
        return super().apply_async(client=client)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        terminals: list[str] = []
        handles: list[Any] = []
        for member in self.members:
            ids, handle, many = member._build(plan, parents, mode, policy, before)
            if many:
                raise ConfigError(f"a group member must give one value, but {member!r} gives a list; "
                                  "put a callback after it (a chord) or flatten it into the outer group")  # fmt: skip
            terminals += ids
            handles.append(handle)
        group_id = self.group_id or new_job_id()
        if terminals:
            plan.groups[group_id] = terminals
        return terminals, GroupResult(group_id, handles, plan.client, parent=before), True


class chord(_Node):
    """A group and a callback that runs once after all members, with their results in input order.

    ``on_child_failure``: ``"fail"`` (default; the callback does not run and fails with the member's
    error), ``"ignore"`` (the callback gets the successful results and a list of failures), or
    ``"continue"`` (a failed member's slot holds its ``TaskFailed``).
    """

    def __init__(self, header: group | Iterable[_Node], body: _Node | None = None, *,
                 on_child_failure: Policy = "fail") -> None:  # fmt: skip
        if on_child_failure not in POLICIES:
            raise ConfigError(f"on_child_failure must be one of {', '.join(POLICIES)}, got {on_child_failure!r}")
        self.header = header if isinstance(header, group) else group(header)
        self.body = body
        self.policy = on_child_failure

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r}, on_child_failure={self.policy!r})"

    def __call__(self, body: _Node | None = None, *, client: Client | None = None) -> Handle:
        """Celery's ``chord(header)(callback)``: apply with this body."""
        return chord(self.header, body or self.body, on_child_failure=self.policy).apply_async(client=client)

    def apply_async(self, *, client: Client | None = None) -> Handle:
        """Returns the callback's result; its ``.parent`` is the header's GroupResult."""
        return super().apply_async(client=client)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        if self.body is None:
            raise ConfigError("chord has no callback: chord(header, callback.s()) or chord(header)(callback.s())")
        terminals, header, _ = self.header._build(plan, parents, mode, policy, before)
        return self.body._build(plan, terminals, "many", self.policy, header)
