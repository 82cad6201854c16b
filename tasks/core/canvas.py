"""The canvas: ``signature``, ``chain``, ``group`` and ``chord``, Celery's names for composing tasks.

Every step is an ordinary RQ job (see tasks/core/lua/includes/release_dependents.lua for how waiting works)::

    (fetch.s(url) | parse.s() | store.s())()                       # each step gets the previous result
    group(resize.s(p) for p in paths)().get()                      # results in input order
    group(add.s(i) for i in range(10))(10)                         # 10 is put first in every member's call
    chord([send_email.s(to, subject) for to in people], summary.s(), on_child_failure="ignore")()

Shared behaviour (calling, ``~``, partials, ``on_error``) is in tasks/core/canvas_node.py, ``Signature`` in
tasks/core/canvas_signature.py, ``xmap``/``xstarmap``/``chunks`` in tasks/core/canvas_map.py.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from config.errors import ConfigError
from tasks.core.canvas_node import CHAIN, Built, Handle, Node
from tasks.core.canvas_signature import Signature, signature
from tasks.core.client import Client
from tasks.core.flowbuild import POLICIES, Mode, Plan, Policy
from tasks.core.groups import GroupResult
from tasks.core.protocol import new_job_id

__all__ = ["Node", "Signature", "chain", "chord", "group", "signature"]


def _nodes(what: str, items: tuple[Any, ...]) -> tuple[Node, ...]:
    if len(items) == 1 and not isinstance(items[0], Node) and isinstance(items[0], Iterable):
        items = tuple(items[0])
    for item in items:
        if not isinstance(item, Node):
            raise ConfigError(f"{what} takes signatures like add.s(1) (or chains, groups, chords), got {item!r}")
    return items


class chain(Node):
    """Steps run one after another, each receiving the previous step's result; ``a.s() | b.s()``.
    A group followed by another step becomes a chord, as in Celery."""

    def __init__(self, *steps: Node | Iterable[Node]) -> None:
        flat: list[Node] = []
        step: Node
        for step in _nodes("chain", steps):
            flat += step.steps if isinstance(step, chain) else [step]
        if not flat:
            raise ConfigError("chain needs at least one step")
        upgraded: list[Node] = []
        for step in flat:
            before = upgraded[-1] if upgraded else None
            if isinstance(before, group):
                upgraded[-1] = chord(before, step)
            else:
                upgraded.append(step)
        self.steps: tuple[Node, ...] = tuple(upgraded)

    def __repr__(self) -> str:
        return " | ".join(repr(s) for s in self.steps)

    def _partial(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> chain:
        return chain(self.steps[0]._partial(args, kwargs), *self.steps[1:])

    def _map(self, change: Callable[[Signature], Signature]) -> chain:
        return chain(*(step._map(change) for step in self.steps))

    def link(self, callback: Signature) -> Signature:
        """Send ``callback`` with the last step's result after it succeeded."""
        return self.steps[-1].link(callback)

    def freeze(self) -> Any:
        """Every step's id now; returns the last step's handle, whose ``.parent`` walks back."""
        handles = [step.freeze() for step in self.steps]
        for before, after in itertools.pairwise(handles):
            _root(after).parent = before
        return handles[-1]

    def apply_async(self, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
                    client: Client | None = None, **options: Any) -> Handle:  # fmt: skip
        """Returns the last step's result (``.parent`` walks back), or a GroupResult if it ends in a group."""
        return super().apply_async(args, kwargs, client=client, **options)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        built: Built = (parents, before, False)  # type: ignore[assignment]
        for index, step in enumerate(self.steps):
            terminals, handle, many = built
            if index:
                mode, policy = ("many" if many else "one"), "fail"
            built = step._build(plan, terminals, mode, policy, handle)
        return built


CHAIN.append(chain)


def _root(handle: Any) -> Any:
    """The first result of a frozen element (a chord's header, a chain's first step)."""
    while getattr(handle, "parent", None) is not None:
        handle = handle.parent
    return handle


class group(Node):
    """Members run in parallel; the result is the list of their results in input order. A group inside a
    group is flattened into it, as in Celery."""

    def __init__(self, *members: Node | Iterable[Node], group_id: str | None = None) -> None:
        flat: list[Node] = []
        for member in _nodes("group", members):
            flat += member.members if type(member) is group else [member]
        self.members: tuple[Node, ...] = tuple(flat)
        self.group_id = group_id

    def __repr__(self) -> str:
        return f"group({', '.join(repr(m) for m in self.members)})"

    def _partial(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> group:
        return group([m._partial(args, kwargs) for m in self.members], group_id=self.group_id)

    def _map(self, change: Callable[[Signature], Signature]) -> group:
        return group([m._map(change) for m in self.members], group_id=self.group_id)

    def skew(self, start: float = 1.0, stop: float | None = None, step: float = 1.0) -> group:
        """Celery's skew: member i gets ``countdown = start + i * step`` (at most ``stop``). Changes this group."""
        skewed = []
        for index, member in enumerate(self.members):
            delay = start + index * step
            countdown = min(delay, stop) if stop is not None else delay
            skewed.append(member._map(functools.partial(_set_countdown, countdown=countdown)))
        self.members = tuple(skewed)
        return self

    def freeze(self) -> GroupResult:
        """Every member's id and the group's id now; returns the GroupResult ``apply_async`` will return."""
        self.group_id = self.group_id or new_job_id()
        return GroupResult(self.group_id, [m.freeze() for m in self.members])

    def apply_async(self, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
                    client: Client | None = None, **options: Any) -> GroupResult:  # fmt: skip
        return super().apply_async(args, kwargs, client=client, **options)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        terminals: list[str] = []
        handles: list[Any] = []
        for member in self.members:
            ids, handle, many = member._build(plan, parents, mode, policy, before)
            if many:
                raise ConfigError(f"a group member must give one value, but {member!r} gives a list; "
                                  "put a callback after it (a chord)")  # fmt: skip
            terminals += ids
            handles.append(handle)
        group_id = self.group_id or new_job_id()
        if terminals:
            plan.groups[group_id] = terminals
        return terminals, GroupResult(group_id, handles, plan.client, parent=before), True


def _set_countdown(sig: Signature, countdown: float) -> Signature:
    return sig.set(countdown=countdown)


class chord(Node):
    """A group and a callback that runs once after all members, with their results in input order.

    ``on_child_failure``: ``"fail"`` (default; the callback does not run and fails with the member's
    error), ``"ignore"`` (the callback gets the successful results and a list of failures), or
    ``"continue"`` (a failed member's slot holds its ``TaskFailed``).
    """

    def __init__(self, header: group | Iterable[Node], body: Node | None = None, *,
                 on_child_failure: Policy = "fail") -> None:  # fmt: skip
        if on_child_failure not in POLICIES:
            raise ConfigError(f"on_child_failure must be one of {', '.join(POLICIES)}, got {on_child_failure!r}")
        self.header = header if isinstance(header, group) else group(header)
        self.body = body
        self.policy = on_child_failure

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r}, on_child_failure={self.policy!r})"

    def __call__(self, body: Node | None = None, *, client: Client | None = None, **options: Any) -> Handle:
        """Celery's ``chord(header)(callback)`` (apply with this body) and ``chord(header, callback)()``."""
        whole = chord(self.header, body or self.body, on_child_failure=self.policy)
        return whole.apply_async(client=client, **options)

    def _partial(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> chord:
        return chord(self.header._partial(args, kwargs), self.body, on_child_failure=self.policy)

    def _map(self, change: Callable[[Signature], Signature]) -> chord:
        body = self.body._map(change) if self.body is not None else None
        return chord(self.header._map(change), body, on_child_failure=self.policy)

    def _needs_body(self) -> Node:
        if self.body is None:
            raise ConfigError("chord has no callback: chord(header, callback.s()) or chord(header)(callback.s())")
        return self.body

    def link(self, callback: Signature) -> Signature:
        return self._needs_body().link(callback)

    def freeze(self) -> Any:
        header = self.header.freeze()
        result = self._needs_body().freeze()
        _root(result).parent = header
        return result

    def apply_async(self, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
                    client: Client | None = None, **options: Any) -> Handle:  # fmt: skip
        """Returns the callback's result; its ``.parent`` is the header's GroupResult."""
        return super().apply_async(args, kwargs, client=client, **options)  # type: ignore[no-any-return]

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        body = self._needs_body()
        terminals, header, _ = self.header._build(plan, parents, mode, policy, before)
        return body._build(plan, terminals, "many", self.policy, header)
