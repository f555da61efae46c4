"""The @task decorator, the Registry and task-module import errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import fastworker
from fastworker import ConfigurationError, InvalidSchedule, Priority, TaskModuleError, task
from fastworker._registry import check_arguments, import_task_modules


def register(**options: Any) -> fastworker.TaskSpec:
    """Decorate a fresh function into a fresh registry with ``options``; return its spec."""
    registry = fastworker.Registry()

    async def job(x: int, y: int = 0) -> int:
        return x + y

    task(registry=registry, **options)(job)
    return registry.get(options.get("name", "job"))


def test_bare_decorator_registers_under_the_function_name_and_returns_it() -> None:
    """@task keeps the function callable as is and registers it by its __name__."""
    registry = fastworker.Registry()

    def multiply(x: int, y: int) -> int:
        return x * y

    decorated = task(registry=registry)(multiply)
    assert decorated is multiply
    assert decorated(3, 4) == 12
    spec = registry.get("multiply")
    assert spec.func is multiply
    assert not spec.is_async
    assert spec.priority is Priority.NORMAL
    assert multiply.fastworker_task is spec  # type: ignore[attr-defined]
    assert "multiply" in registry
    assert registry.names() == ["multiply"]


def test_options_are_recorded_on_the_spec() -> None:
    """Name, priority (by name), retries, backoff, retry_on, timeout and redeliver are kept."""
    spec = register(
        name="reports.build",
        priority="high",
        retries=3,
        retry_backoff=2.0,
        retry_on=KeyError,
        timeout=30,
        redeliver=False,
    )
    assert spec.name == "reports.build"
    assert spec.is_async
    assert spec.priority is Priority.HIGH
    assert (spec.retries, spec.retry_backoff, spec.retry_on) == (3, 2.0, (KeyError,))
    assert spec.timeout == 30.0
    assert spec.redeliver is False
    assert not spec.periodic


def test_schedules_are_parsed_at_decoration() -> None:
    """repeat_interval and cron make a periodic spec with a readable description."""
    every = register(repeat_interval=30)
    assert every.periodic
    assert every.describe_schedule() == "every 30s"
    cron = register(cron="0 9 * * 1-5")
    assert cron.periodic
    assert cron.cron is not None
    assert cron.describe_schedule() == "cron 0 9 * * 1-5"


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"repeat_interval": 10, "cron": "* * * * *"}, InvalidSchedule, "not both"),
        ({"repeat_interval": -1}, InvalidSchedule, "repeat_interval must be .* > 0, got -1"),
        ({"repeat_interval": 0}, InvalidSchedule, "repeat_interval must be"),
        ({"cron": "61 * * * *"}, InvalidSchedule, "minute field '61' is out of range 0-59"),
        ({"cron": "0 9 * *"}, InvalidSchedule, "expected 5 fields"),
        ({"cron": "0 9 * * 1-5", "timezone": "Mars/Olympus"}, InvalidSchedule, "Mars/Olympus"),
        ({"timezone": "UTC"}, InvalidSchedule, "timezone only applies to cron"),
        ({"priority": "urgent"}, ConfigurationError, "unknown priority 'urgent'"),
        ({"priority": 7}, ConfigurationError, "unknown priority 7"),
        ({"retries": -1}, ConfigurationError, "retries must be an int >= 0"),
        ({"retry_backoff": -2.0}, ConfigurationError, "retry_backoff must be a number >= 0"),
        ({"timeout": 0}, ConfigurationError, "timeout must be a number > 0"),
        ({"retry_on": int}, ConfigurationError, "retry_on must be exception classes"),
        ({"name": "  "}, ConfigurationError, "non-empty string"),
    ],
)
def test_invalid_options_raise_at_decoration_time(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Each bad option raises a clear ConfigurationError (or InvalidSchedule) naming the task."""
    with pytest.raises(error, match=match) as info:
        register(**options)
    if options.get("name", "").strip():
        assert "task 'job'" in str(info.value)


def test_invalid_schedule_errors_name_the_task() -> None:
    """A bad cron string says which task it belongs to."""
    with pytest.raises(InvalidSchedule, match="task 'nightly': cron"):
        register(name="nightly", cron="not a cron")


def test_both_decorator_forms_at_once_is_an_error() -> None:
    """Passing the function and options together is refused."""

    def job() -> None:
        return None

    with pytest.raises(ConfigurationError, match="not both forms"):
        task(job, priority="high")  # type: ignore[call-overload]


def test_a_name_taken_by_another_function_is_an_error() -> None:
    """Two different functions under one name are refused; re-registering the same is fine."""
    registry = fastworker.Registry()

    def first() -> int:
        return 1

    def second() -> int:
        return 2

    task(registry=registry, name="job")(first)
    task(registry=registry, name="job")(first)  # the same function again (a module reload)
    with pytest.raises(ConfigurationError, match="'job' is already registered"):
        task(registry=registry, name="job")(second)


def test_get_of_an_unknown_name_lists_the_known_tasks() -> None:
    """Registry.get raises TaskNotRegistered naming what is registered; lookup gives None."""
    registry = fastworker.Registry()
    task(registry=registry, name="alpha")(lambda: None)
    with pytest.raises(fastworker.TaskNotRegistered, match=r"'beta'.*known tasks: alpha"):
        registry.get("beta")
    assert registry.lookup("beta") is None


def test_check_arguments_reports_arity_errors_like_python() -> None:
    """Arguments that do not fit the signature raise TypeError prefixed with the task name."""
    spec = register()
    check_arguments(spec, [1], {})
    check_arguments(spec, [1], {"y": 2})
    with pytest.raises(TypeError, match=r"job\(\) missing a required argument: 'x'"):
        check_arguments(spec, [], {})
    with pytest.raises(TypeError, match=r"job\(\) too many positional arguments"):
        check_arguments(spec, [1, 2, 3], {})
    with pytest.raises(TypeError, match=r"job\(\) got an unexpected keyword argument 'z'"):
        check_arguments(spec, [1], {"z": 3})


def test_importing_a_missing_task_module_names_it() -> None:
    """A module that does not exist raises TaskModuleError naming the module."""
    with pytest.raises(TaskModuleError, match="cannot import task module 'no_such_tasks_xyz'"):
        import_task_modules(["no_such_tasks_xyz"])


def test_a_task_module_that_fails_on_import_is_named_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while importing a task module is reported with the module and the cause."""
    (tmp_path / "broken_tasks_mod.py").write_text("raise RuntimeError('database down')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_tasks_mod", raising=False)
    with pytest.raises(TaskModuleError) as info:
        import_task_modules("sample_tasks, broken_tasks_mod")
    message = str(info.value)
    assert "'broken_tasks_mod'" in message
    assert "RuntimeError: database down" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    assert isinstance(info.value, ImportError)


def test_import_task_modules_accepts_a_comma_separated_string() -> None:
    """A "a, b" string names several modules; blanks are ignored; None imports nothing."""
    assert import_task_modules(" sample_tasks , ,json") == ["sample_tasks", "json"]
    assert import_task_modules(None) == []


async def test_open_control_plane_reports_a_bad_task_module() -> None:
    """Starting a control plane with a missing tasks= module fails with TaskModuleError."""
    with pytest.raises(TaskModuleError, match="no_such_tasks_xyz"):
        async with fastworker.open_control_plane(
            tasks=["no_such_tasks_xyz"], url="memory://bad-module", discovery=False
        ):
            pass  # pragma: no cover
