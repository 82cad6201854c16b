"""The ``@task`` decorator and the ``Task`` object it returns."""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import types
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, get_args, overload

from config.errors import ConfigError, EnqueueError
from config.routes import route
from config.settings import Settings
from tasks import signals
from tasks.core import validate
from tasks.core.canvas_map import task_chunks, xmap, xstarmap
from tasks.core.canvas_signature import Signature
from tasks.core.celery_calls import call_fields, pop_celery_options, publish
from tasks.core.celery_options import ACCEPTED, APPLY_CELERY, unknown_option
from tasks.core.client import Client, default_client, is_plain
from tasks.core.context import TaskContext
from tasks.core.eager import EagerResult, always_eager, run_eagerly
from tasks.core.options import TaskOptions
from tasks.core.prepacked import prepacked
from tasks.core.protocol import JobSpec, UniqueMode, encode_job, reencode
from tasks.core.registry import register
from tasks.core.result import AsyncResult

__all__ = ["Task", "shared_task", "task"]

P = ParamSpec("P")
R = TypeVar("R")

APPLY_OPTIONS = ("queue", "priority", "countdown", "eta", "job_id", "unique_key", "unique_ttl_s", "unique_mode")
HOOKS = ("before_start", "on_success", "on_failure", "on_retry", "after_return")
UNIQUE_MODES: tuple[UniqueMode, ...] = get_args(UniqueMode)


class Task(Generic[P, R]):
    """A registered function: call it to run inline, ``.delay()`` to run it on a worker.

    Subclass it for ``@task(base=MyTask)``: Celery's hooks ``before_start``, ``on_success``, ``on_failure``,
    ``on_retry`` and ``after_return`` run in the worker around each job (only when overridden).
    """

    def __init__(self, func: Callable[..., R], options: TaskOptions) -> None:
        self.func = func
        self.options = options
        self.name = options.name
        self.call_signature = inspect.signature(func)
        # Whether @task named a queue: Celery's order is the call's queue=, the task's, task_routes, the default.
        self.queue_declared = options.queue != "default"
        self.hooked = any(getattr(type(self), hook) is not getattr(Task, hook) for hook in HOOKS)
        functools.update_wrapper(self, func)
        if self.name != f"{func.__module__}.{func.__qualname__}" and "." in self.name:
            # RQ names a function ``__module__.__qualname__``: make that the registered name.
            self.__module__, _, self.__qualname__ = self.name.rpartition(".")

    # RQ's ``Queue.enqueue(task)``, ``@rq.decorators.job`` and ``rq.Callback(task)`` store a function as
    # ``f"{f.__module__}.{f.__qualname__}"`` only if ``inspect.isfunction(f)``, which is an isinstance
    # check, and isinstance honours ``__class__`` (as unittest.mock's specs use): a task is then enqueued
    # under its registered name, where any other callable object would be stored as an instance. ``type()``
    # is still ``Task``; ``__code__`` keeps ``inspect`` helpers that follow an ``isfunction`` working.
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return types.FunctionType if "." in self.name else type(self)

    @property
    def __code__(self) -> types.CodeType:
        return self.func.__code__

    def __reduce__(self) -> tuple[Any, ...]:
        # By reference, as pickle does for functions (pickle would also check ``__class__``).
        return (_by_reference, (self.func.__module__, self.func.__qualname__))

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task here and now, like Celery; a bound task gets an inline context."""
        if self.options.bind:
            return self.func(TaskContext.inline(self), *args, **kwargs)
        return self.func(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult:
        """Enqueue with default options."""
        return self.apply_async(args, kwargs)

    def apply(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any) -> EagerResult:
        """Celery's ``Task.apply``: run here and now as a worker would, returning an ``EagerResult``."""
        return run_eagerly(self, tuple(args), kwargs or {}, options.get("task_id"))

    # Celery's hooks, called in the worker; a subclass overrides the ones it needs.
    def before_start(self, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Before the task runs."""

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """After the task returned ``retval``."""

    def on_failure(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   einfo: Any) -> None:  # fmt: skip
        """After the task failed for good; ``einfo`` has ``.exception``, ``.type`` and ``.traceback``."""

    def on_retry(self, exc: BaseException, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 einfo: Any) -> None:  # fmt: skip
        """After the task failed and another attempt was scheduled."""

    def after_return(self, status: str, retval: Any, task_id: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any], einfo: Any) -> None:  # fmt: skip
        """After any of the above; ``status`` is SUCCESS, FAILURE, RETRY, REVOKED or IGNORED."""

    def signature(self, args: Iterable[Any] | None = None, kwargs: dict[str, Any] | None = None,
                  **options: Any) -> Signature:  # fmt: skip
        """Celery's ``Task.signature(args, kwargs, **options)``: ``self.s(*args, **kwargs)`` with options."""
        immutable = bool(options.pop("immutable", False))
        return Signature(self, tuple(args or ()), dict(kwargs or {}), {}, immutable).set(**options)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature for the canvas (tasks/core/canvas.py); in a chain it gets the previous result first."""
        return Signature(self, args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: in a chain it ignores the previous step's result."""
        return Signature(self, args, kwargs, immutable=True)

    def apply_async(
        self,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        client: Client | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Enqueue with per-call options: queue, priority, countdown, eta, job_id, unique_key, and Celery's
        (tasks/core/celery_calls.py). In eager mode (tasks/core/eager.py) run inline instead.

        Raises:
            ConfigError: an unknown or invalid option.
            EnqueueError: arguments that are not JSON or too large; nothing is written.
        """
        if client is None and always_eager():
            return run_eagerly(self, tuple(args), kwargs or {}, options.get("task_id") or options.get("job_id"))
        client = client or default_client()
        if not options and not (signals.before_task_publish.receivers or signals.after_task_publish.receivers):
            template = prepacked(self, client)  # a plain call: most of the command is packed already
            if template is not None:
                return AsyncResult(template.enqueue(self, tuple(args), kwargs or {}, client), client=client)
        celery = pop_celery_options(options)
        spec = self.build_job(tuple(args), kwargs or {}, client, **options, **celery)
        if signals.before_task_publish.receivers or signals.after_task_publish.receivers:
            return self._publish_with_signals(spec, tuple(args), kwargs or {}, client, celery)
        job_id = publish(lambda: client.enqueue(spec), celery, self.name)
        return AsyncResult(job_id, client=client)

    def _publish_with_signals(self, spec: JobSpec, args: tuple[Any, ...], kwargs: dict[str, Any], client: Client,
                              celery: dict[str, Any]) -> AsyncResult:  # fmt: skip
        """Celery's publish signals around the enqueue (sender: the task name; body: args, kwargs, embed)."""
        body: tuple[Any, ...] = (args, kwargs, {})
        headers = {"id": spec.job_id, "task": self.name, **(celery.get("headers") or {})}
        signals.send(signals.before_task_publish, self.name, body=body, exchange="", routing_key=spec.queue,
                     headers=headers, properties={}, declare=[], retry_policy=celery.get("retry_policy"))  # fmt: skip
        job_id = publish(lambda: client.enqueue(spec), celery, self.name)
        signals.send(signals.after_task_publish, self.name, body=body, exchange="", routing_key=spec.queue,
                     headers=headers)  # fmt: skip
        return AsyncResult(job_id, client=client)

    # Celery's (tasks/core/canvas_map.py): map, starmap: one job calling the task per item; chunks(items, n)
    map, starmap, chunks = xmap, xstarmap, task_chunks

    def enqueue_many(
        self, arg_tuples: Iterable[Iterable[Any]], *, client: Client | None = None, **options: Any
    ) -> list[AsyncResult]:
        """One job per argument tuple, in pipelined round trips of up to 1000 jobs (taskrail's ``map`` until 16)."""
        client = client or default_client()
        calls = [tuple(args) for args in arg_tuples]
        if not calls:
            return []
        # Encode every call before writing any, so one bad call writes nothing at all. The first
        # call is encoded in full; the others reuse its fields (they differ only in their data).
        first = self.build_job(calls[0], {}, client, **options)
        specs = [first]
        if is_plain(first) and options.get("job_id") is None:
            for args in calls[1:]:
                self.check_arguments(args, {})
                specs.append(reencode(first, self.name, args, {}, client.settings.max_payload_bytes))
        else:
            specs += [self.build_job(args, {}, client, **options) for args in calls[1:]]
        return [AsyncResult(job_id, client=client) for job_id in client.enqueue_many(specs)]

    def build_job(self, args: tuple[Any, ...], kwargs: dict[str, Any], client: Client, **options: Any) -> JobSpec:
        """Check the call against the signature and options, and encode it (writes nothing)."""
        celery = pop_celery_options(options)
        unknown = sorted(set(options) - set(APPLY_OPTIONS))
        if unknown:
            raise unknown_option(self.name, unknown[0], (*APPLY_OPTIONS, *APPLY_CELERY))
        self.check_arguments(args, kwargs)
        return self.encode_call(args, kwargs, client, options, celery)

    def encode_call(self, args: tuple[Any, ...], kwargs: dict[str, Any], client: Client, options: dict[str, Any],
                    celery: dict[str, Any]) -> JobSpec:  # fmt: skip
        """A call whose options (taskrail's and Celery's) are already sorted out, encoded (writes nothing)."""
        opts = self.options
        queue = self.queue_for(options.get("queue"), client.settings)
        priority = validate.priority(options.get("priority", opts.priority), self.name)
        now = client.now()
        run_at = validate.run_at(options.get("countdown"), options.get("eta"), now, self.name)
        settings = client.settings
        extra = {
            **opts.limit_fields(self.call_signature, args, kwargs),
            **call_fields(self.name, celery, opts, now),
        }
        spec = encode_job(
            self.name,
            args,
            kwargs,
            queue=queue,
            max_payload_bytes=settings.max_payload_bytes,
            job_id=options.get("job_id"),
            run_at=run_at,
            time_limit=celery.get("time_limit", opts.time_limit),
            result_ttl=opts.result_ttl if opts.result_ttl is not None else settings.result_ttl_s,
            failure_ttl=settings.failure_ttl_s,
            priority=priority,
            extra=extra or None,
        )
        return self._with_unique(spec, args, kwargs, options)

    def queue_for(self, queue: str | None, settings: Settings) -> str:
        """The queue a call goes to, in Celery's order: the call's ``queue=``, else the one ``@task`` names,
        else the first of ``settings.task_routes`` (config/routes.py) that matches, else the default."""
        if queue:
            return validate.queue_name(queue, self.name)
        if self.queue_declared or not settings.task_routes:
            return self.options.queue
        return route(settings.task_routes, self.name) or self.options.queue

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise a TypeError-like ConfigError when the call does not bind to the function's signature
        (unless the task has Celery's ``typing=False``).

        Raises:
            EnqueueError: the task lives in ``__main__`` (a script or a REPL), where no worker can find it.
        """
        if self.name.startswith("__main__."):
            raise EnqueueError(
                f"task {self.name} is defined in __main__ (the script being run, or a REPL), which no worker "
                "can import: move it into a module of a package (e.g. myapp/tasks.py) and list that module in "
                "the workers' TASKRAIL_IMPORTS"
            )
        if not self.options.typing:
            return
        shape, fewest, most = self._call_shape()
        if not kwargs and fewest <= len(args) <= most:  # positional arguments only: counting them is binding them
            return
        try:
            shape.bind(*args, **kwargs)
        except TypeError as exc:
            raise ConfigError(f"{self.name}{shape}: {exc}") from exc

    def _call_shape(self) -> tuple[inspect.Signature, int, int]:
        """The signature a call binds to (without the bound task's ``self``), built once, not per call, and
        how many positional arguments alone bind to it (fewest, most; most -1 when kwargs are needed or
        the signature has ``*args``, keyword-only or positional-only parameters: then ``bind`` decides)."""
        made = self.__dict__.get("_shape")
        if made is None or made[0] is not self.call_signature or made[1] != self.options.bind:
            params = list(self.call_signature.parameters.values())
            params = params[1:] if self.options.bind else params
            shape = self.call_signature.replace(parameters=params)
            plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
            required = sum(p.default is p.empty for p in params)
            made = (self.call_signature, self.options.bind, shape, required, len(params) if plain else -1)
            self.__dict__["_shape"] = made
        return made[2], made[3], made[4]

    def _with_unique(
        self, spec: JobSpec, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> JobSpec:
        key = options.get("unique_key")
        if key is None and self.options.unique:
            key = hashlib.sha256(str(spec.fields["data"]).encode()).hexdigest()  # a short key, whatever the arguments
        if key is None:
            return spec
        mode = options.get("unique_mode", self.options.unique_mode)
        if mode not in UNIQUE_MODES:
            raise ConfigError(f"{self.name}: unique_mode must be one of {', '.join(UNIQUE_MODES)}, got {mode!r}")
        ttl = options.get("unique_ttl_s", self.options.unique_ttl_s)
        if mode == "throttle" and not ttl:
            raise ConfigError(f"{self.name}: unique_mode 'throttle' needs unique_ttl_s > 0")
        return JobSpec(
            spec.job_id, spec.queue, spec.fields, spec.run_at, spec.priority, f"{self.name}:{key}", int(ttl), mode
        )


def _by_reference(module: str, qualname: str) -> Any:
    """The task defined as ``module.qualname`` (unpickling)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


@overload
def task(func: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(func: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Turn a function into a registered task: ``@task`` or ``@task(queue="email", max_retries=5)``.

    Raises:
        ConfigError: an unknown option or a bad value, at decoration time.
    """

    base = options.pop("base", Task)
    if not (isinstance(base, type) and issubclass(base, Task)):
        raise ConfigError(f"@task: base must be a subclass of tasks.Task, got {base!r}")

    def decorate(fn: Callable[..., Any]) -> Task[Any, Any]:
        given = {**_class_options(base), **options}
        built: Task[Any, Any] = base(fn, TaskOptions.build(fn, **given))
        built.queue_declared = "queue" in given
        register(built)
        return built

    return decorate(func) if func is not None else decorate


def _class_options(base: type[Task[Any, Any]]) -> dict[str, Any]:
    """Options a ``base=`` class sets as class attributes, as Celery reads them (``max_retries = 5``)."""
    names = (set(TaskOptions.__dataclass_fields__) | set(ACCEPTED)) - {"name", "extra"}
    found: dict[str, Any] = {}
    for klass in reversed(base.__mro__):
        if issubclass(klass, Task) and klass is not Task:
            found.update({key: value for key, value in vars(klass).items() if key in names})
    return found


shared_task = task  # Celery's name for a task not bound to an app; taskrail has no app object
