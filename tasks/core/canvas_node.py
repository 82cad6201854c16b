"""What every canvas element shares (``Node``): ``|``, calling, ``~``, ``delay``/``apply_async`` with Celery's
partial arguments and per-call options, ``link_error``/``on_error`` and ``freeze``.

The elements themselves are in tasks/core/canvas_signature.py (``Signature``) and tasks/core/canvas.py
(``chain``, ``group``, ``chord``); ``xmap``, ``xstarmap`` and ``chunks`` in tasks/core/canvas_map.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Union

from config.errors import ConfigError
from tasks.core.client import Client, default_client
from tasks.core.flowbuild import Mode, Plan, Policy
from tasks.core.groups import FlowResult, GroupResult

if TYPE_CHECKING:
    from tasks.core.canvas_signature import Signature

__all__ = ["CHAIN", "Built", "Handle", "Node"]

Handle = Union[FlowResult, GroupResult]  # noqa: UP007 (a runtime alias)
# What a node's build returns: its terminal job ids, its result handle, whether its value is a list.
Built = tuple[list[str], Handle, bool]
# ``chain``, for ``a | b``: set by tasks/core/canvas.py, which builds on this module.
CHAIN: list[Callable[[Node, Node], Node]] = []


class Node:
    """A canvas element. Subclasses give ``_build``, ``_partial``, ``_map`` and ``freeze``."""

    def _build(self, plan: Plan, parents: list[str], mode: Mode, policy: Policy, before: Handle | None) -> Built:
        raise NotImplementedError

    def _partial(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Node:
        """A copy that receives ``args`` first and ``kwargs`` merged (Celery's partials)."""
        raise NotImplementedError

    def _map(self, change: Callable[[Signature], Signature]) -> Node:
        """A copy with ``change`` applied to every signature inside."""
        raise NotImplementedError

    def _signatures(self) -> Iterator[Signature]:
        """Every signature inside, in order."""
        found: list[Signature] = []

        def keep(sig: Signature) -> Signature:
            found.append(sig)
            return sig

        self._map(keep)
        return iter(found)

    def freeze(self) -> Any:
        """Give every job its id now and return the result handle that ``apply_async`` will return."""
        raise NotImplementedError

    def __or__(self, other: Node) -> Node:
        if not isinstance(other, Node):
            return NotImplemented
        return CHAIN[0](self, other)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's ``group(...)()``, ``chain(...)()``, ``(a.s(4) | b.s(8))(4)``: apply with partial arguments."""
        return self.apply_async(args, kwargs)

    def __invert__(self) -> Any:
        """Celery's ``~sig``: apply and wait for the result."""
        return self.apply_async().get()

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.apply_async(args, kwargs)

    def apply_async(self, args: tuple[Any, ...] | list[Any] = (), kwargs: Mapping[str, Any] | None = None, *,
                    client: Client | None = None, **options: Any) -> Any:  # fmt: skip
        """Write every job of the flow in a few round trips; returns the flow's result handle.

        ``args`` go first to the first task (to every member of a group), ``kwargs`` are merged, and
        ``options`` (``queue``, ``countdown``, ...) apply to every task, as in Celery; ``link`` follows the
        last task (``link()``), ``link_error`` every task (``link_error()``).

        Raises:
            ConfigError: a call that does not fit its task, or bad options; nothing is written.
            EnqueueError: arguments that are not JSON or too large; nothing is written.
        """
        node = self._partial(tuple(args), dict(kwargs or {})) if args or kwargs else self
        links = {name: options.pop(name) for name in ("link", "link_error") if options.get(name)}
        if links:  # on copies: the caller's canvas keeps its own callbacks
            node = node._map(lambda sig: sig.clone())
            for name, value in links.items():
                for sig in value if isinstance(value, list | tuple) else [value]:
                    getattr(node, name)(sig)
        if options:
            if "job_id" in options or "task_id" in options:
                raise ConfigError(f"{self!r}: job_id names one job; set it on a signature: sig.set(job_id=...)")
            node = node._map(lambda sig: sig.set(**options))
        plan = Plan(client or default_client())
        _, handle, _ = node._build(plan, [], "", "fail", None)
        plan.write()
        return handle

    def link(self, callback: Signature) -> Signature:
        raise ConfigError(f"{self!r}: link() needs a signature, a chain or a chord; for a group use a chord")

    def link_error(self, errback: Signature) -> Signature:
        """Call ``errback`` when a task of this element fails (for good); in a chain the later steps do not
        run, so the errback runs once. Returns ``errback``, as Celery."""
        for sig in self._signatures():
            sig.link_error(errback)
        return errback

    def on_error(self, errback: Signature) -> Node:
        """``link_error`` that returns this element, for chaining calls."""
        self.link_error(errback)
        return self
