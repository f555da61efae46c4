"""The task registry, the ``@task`` decorator that writes to it, and importing task
modules by name. What one task is (its spec, its options validated, the check of its
call arguments) is in ``_task_spec``."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from ._errors import ConfigurationError, TaskModuleError, TaskNotRegistered
from ._messages import TaskInfo
from ._model import Priority
from ._routing import DEFAULT_QUEUE
from ._task_spec import TaskSpec, make_spec

# Imported from here too (the executor, the scheduler, the control plane, tests).
from ._task_spec import check_arguments as check_arguments

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Task specs by name. One default registry serves ``@task``; tests may make their own."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}

    def add(self, spec: TaskSpec) -> None:
        """Register a spec; registering the same function again is harmless.

        Raises:
            ConfigurationError: a different function is registered under that name.
        """
        existing = self._tasks.get(spec.name)
        if existing is not None and _origin(existing.func) != _origin(spec.func):
            raise ConfigurationError(
                f"task name {spec.name!r} is already registered by "
                f"{_origin(existing.func)}: give one of them another name=..."
            )
        self._tasks[spec.name] = spec

    def get(self, name: str) -> TaskSpec:
        """The spec for ``name``.

        Raises:
            TaskNotRegistered: no task has that name (the message names the known ones).
        """
        spec = self._tasks.get(name)
        if spec is None:
            known = ", ".join(sorted(self._tasks)) or "none"
            raise TaskNotRegistered(
                f"no task named {name!r} is registered (known tasks: {known}); "
                "check the name and the tasks= modules"
            )
        return spec

    def lookup(self, name: str) -> TaskSpec | None:
        """The spec for ``name`` or None."""
        return self._tasks.get(name)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._tasks)

    def specs(self) -> list[TaskSpec]:
        """Registered specs, sorted by name."""
        return [self._tasks[n] for n in sorted(self._tasks)]

    def periodic(self) -> list[TaskSpec]:
        """Specs with a repeat_interval or cron schedule."""
        return [s for s in self.specs() if s.periodic]

    def infos(self) -> list[TaskInfo]:
        """The dispatch policy of every registered task, sorted by name."""
        return [spec.info() for spec in self.specs()]

    def subset(self, modules: Iterable[str]) -> Registry:
        """A registry of the tasks defined in ``modules`` (or their submodules).

        In one process every task module registers into the default registry; this is
        how an in-process subworker (the test harness) has only its own service's tasks.
        """
        prefixes = tuple(modules)
        sub = Registry()
        for spec in self.specs():
            module = getattr(spec.func, "__module__", "") or ""
            if any(module == m or module.startswith(m + ".") for m in prefixes):
                sub.add(spec)
        return sub

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


default_registry = Registry()
"""The registry ``@task`` writes to."""


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


@overload
def task(func: F, /) -> F: ...


@overload
def task(
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
    registry: Registry | None = None,
) -> Callable[[F], F]: ...


def task(func: Any = None, /, *, registry: Registry | None = None, **options: Any) -> Any:
    """Register a function (sync or ``async def``) as a task.

    ``@task`` registers it under the function's name; ``@task(name=..., priority=...,
    retries=..., retry_backoff=..., retry_on=..., timeout=..., redeliver=...,
    repeat_interval=..., cron=..., timezone=..., max_worker_losses=..., queue=...,
    max_concurrency=..., rate_limit=...)`` sets options (``queue``, ``max_concurrency``
    and ``rate_limit`` are the cluster-wide dispatch policy: see docs/semantics.md,
    "Routing and limits"). The function itself is returned unchanged (still callable
    directly), with the spec at ``func.fastworker_task``.

    Args:
        func: the function, when used bare as ``@task``.
        registry: where to register it (default: the process's default registry).
        **options: the task's options, listed above.

    Returns:
        The function (bare ``@task``), or the decorator (``@task(...)``).

    Raises:
        ConfigurationError: an invalid option, both forms at once, or another function
            already registered under the name; raised at decoration time.
        InvalidSchedule: ``cron``, ``timezone`` or ``repeat_interval`` cannot be used.
    """
    target = registry if registry is not None else default_registry

    def decorate(f: F) -> F:
        spec = make_spec(f, **options)
        target.add(spec)
        try:
            f.fastworker_task = spec  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return f

    if func is not None:
        if options:
            raise ConfigurationError("use @task or @task(...options...), not both forms")
        return decorate(func)
    return decorate


def import_task_modules(modules: Iterable[str] | str | None) -> list[str]:
    """Import task modules by dotted name (a list, or a comma-separated string).

    Returns the module names imported.

    Raises:
        TaskModuleError: a module could not be imported; it names the module and
            carries the original traceback text.
    """
    if modules is None:
        return []
    if isinstance(modules, str):
        modules = modules.split(",")
    names = [m.strip() for m in modules if m and m.strip()]
    for module in names:
        try:
            importlib.import_module(module)
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc)).rstrip()
            raise TaskModuleError(
                f"cannot import task module {module!r}: {type(exc).__name__}: {exc}\n{detail}"
            ) from exc
    return names
