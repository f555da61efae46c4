"""One task: its spec (``TaskSpec``), the ``@task`` options validated into one
(``make_spec``), and the check of call arguments against its signature
(``check_arguments``). The registry that holds specs by name is ``_registry``."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ._cron import CronSchedule
from ._errors import ConfigurationError, InvalidSchedule
from ._messages import TaskInfo
from ._model import Priority
from ._routing import DEFAULT_QUEUE, parse_rate


@attrs.frozen
class TaskSpec:
    """A registered task: its function and options."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    priority: Priority = Priority.NORMAL
    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout: float | None = None
    redeliver: bool = True
    repeat_interval: float | None = None
    cron: CronSchedule | None = None
    max_worker_losses: int | None = None
    """Lost workers this task may have been in flight on; None: the server's setting."""
    queue: str = DEFAULT_QUEUE
    max_concurrency: int | None = None
    rate_limit: str | None = None

    def info(self) -> TaskInfo:
        """The dispatch policy a worker announces for this task."""
        return TaskInfo(
            self.name,
            self.queue,
            int(self.priority),
            self.retries,
            self.retry_backoff,
            self.retry_backoff_max,
            self.timeout,
            self.redeliver,
            self.max_concurrency,
            self.rate_limit,
            self.max_worker_losses,
        )

    @property
    def periodic(self) -> bool:
        """True for tasks with a repeat_interval or a cron schedule."""
        return self.repeat_interval is not None or self.cron is not None

    def describe_schedule(self) -> str:
        """A short text of the schedule ("every 30s", "cron 0 9 * * 1-5", or "")."""
        if self.repeat_interval is not None:
            return f"every {self.repeat_interval:g}s"
        if self.cron is not None:
            return f"cron {self.cron.expression}"
        return ""


def make_spec(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    priority: Priority | str | int = Priority.NORMAL,
    retries: int = 0,
    retry_backoff: float = 1.0,
    retry_backoff_max: float = 600.0,
    retry_on: type[BaseException] | Iterable[type[BaseException]] | None = None,
    timeout: float | None = None,
    redeliver: bool = True,
    repeat_interval: float | None = None,
    cron: str | None = None,
    timezone: str | None = None,
    queue: str = DEFAULT_QUEUE,
    max_concurrency: int | None = None,
    rate_limit: str | None = None,
    max_worker_losses: int | None = None,
) -> TaskSpec:
    """Validate options and build a TaskSpec (the options are those of ``@task``).

    Raises:
        ConfigurationError: an option is invalid (the message says which and why).
        InvalidSchedule: ``cron``, ``timezone`` or ``repeat_interval`` cannot be used.
    """
    if not callable(func):
        raise ConfigurationError(f"@task needs a function, got {func!r}")
    task_name = name if name is not None else getattr(func, "__name__", None)
    if not isinstance(task_name, str) or not task_name.strip():
        raise ConfigurationError("a task name must be a non-empty string")
    where = f"task {task_name!r}"
    try:
        prio = Priority.parse(priority)
    except ValueError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigurationError(f"{where}: retries must be an int >= 0, got {retries!r}")
    for label, value in (
        ("retry_backoff", retry_backoff),
        ("retry_backoff_max", retry_backoff_max),
    ):
        if not _number(value) or value < 0:
            raise ConfigurationError(f"{where}: {label} must be a number >= 0, got {value!r}")
    if timeout is not None and (not _number(timeout) or timeout <= 0):
        raise ConfigurationError(f"{where}: timeout must be a number > 0 or None, got {timeout!r}")
    if retry_on is None:
        retry_types: tuple[type[BaseException], ...] = (Exception,)
    elif isinstance(retry_on, type):
        retry_types = (retry_on,)
    else:
        retry_types = tuple(retry_on)
    if not retry_types or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in retry_types
    ):
        raise ConfigurationError(f"{where}: retry_on must be exception classes, got {retry_on!r}")
    if max_worker_losses is not None and (
        not isinstance(max_worker_losses, int)
        or isinstance(max_worker_losses, bool)
        or max_worker_losses < 1
    ):
        raise ConfigurationError(
            f"{where}: max_worker_losses must be an int >= 1 or None, got {max_worker_losses!r}"
        )
    if repeat_interval is not None and cron is not None:
        raise InvalidSchedule(f"{where}: give repeat_interval or cron, not both")
    if repeat_interval is not None and (not _number(repeat_interval) or repeat_interval <= 0):
        raise InvalidSchedule(
            f"{where}: repeat_interval must be a number of seconds > 0, got {repeat_interval!r}"
        )
    schedule = None
    if cron is not None:
        try:
            schedule = CronSchedule.parse(cron, timezone)
        except InvalidSchedule as exc:
            raise InvalidSchedule(f"{where}: {exc}") from None
    elif timezone is not None:
        raise InvalidSchedule(f"{where}: timezone only applies to cron schedules")
    if not isinstance(queue, str) or not queue.strip() or "," in queue:
        raise ConfigurationError(
            f"{where}: queue must be a non-empty name without commas, got {queue!r}"
        )
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int)
        or isinstance(max_concurrency, bool)
        or max_concurrency < 1
    ):
        raise ConfigurationError(
            f"{where}: max_concurrency must be an int >= 1 or None, got {max_concurrency!r}"
        )
    if rate_limit is not None:
        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return TaskSpec(
        name=task_name,
        func=func,
        is_async=inspect.iscoroutinefunction(inspect.unwrap(func)),
        priority=prio,
        retries=retries,
        retry_backoff=float(retry_backoff),
        retry_backoff_max=float(retry_backoff_max),
        retry_on=retry_types,
        timeout=float(timeout) if timeout is not None else None,
        redeliver=bool(redeliver),
        repeat_interval=float(repeat_interval) if repeat_interval is not None else None,
        cron=schedule,
        queue=queue,
        max_concurrency=max_concurrency,
        rate_limit=rate_limit,
        max_worker_losses=max_worker_losses,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class _ArgShape:
    """A cheap arity check for plain signatures; anything unusual defers to Signature.bind."""

    __slots__ = (
        "max_positional",
        "min_positional",
        "names",
        "required_names",
        "signature",
        "simple",
    )

    def __init__(self, func: Callable[..., Any]) -> None:
        try:
            self.signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None
        self.simple = False
        if self.signature is None:
            return
        params = list(self.signature.parameters.values())
        kinds = {p.kind for p in params}
        if kinds - {inspect.Parameter.POSITIONAL_OR_KEYWORD}:
            return  # *args, **kwargs, keyword-only or positional-only: use bind
        self.simple = True
        self.names = frozenset(p.name for p in params)
        self.max_positional = len(params)
        required = [p for p in params if p.default is inspect.Parameter.empty]
        self.min_positional = len(required)
        self.required_names = [p.name for p in required]

    def fits(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> bool:
        """True when the arguments surely bind; False means "ask Signature.bind"."""
        if not self.simple:
            return self.signature is None
        n = len(args)
        if n > self.max_positional:
            return False
        if not kwargs:
            return n >= self.min_positional
        if not self.names.issuperset(kwargs):
            return False
        given = n + len(kwargs)
        return given <= self.max_positional and all(
            i < n or name in kwargs for i, name in enumerate(self.required_names)
        )


_shapes: dict[Callable[..., Any], _ArgShape] = {}


def check_arguments(
    spec: TaskSpec, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]
) -> None:
    """Check the arguments against the task's signature before they are sent.

    Raises:
        TypeError: they do not fit, with Python's own message.
    """
    shape = _shapes.get(spec.func)
    if shape is None:
        shape = _shapes[spec.func] = _ArgShape(spec.func)
    if shape.fits(args, kwargs) or shape.signature is None:
        return
    try:
        shape.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{spec.name}() {exc}") from None
