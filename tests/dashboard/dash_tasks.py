"""Tasks for the dashboard tests (imported by name: the server runs with this cwd)."""

from __future__ import annotations

import trio

from fastworker import task


@task(name="dash.add")
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@task(name="dash.echo")
def echo(value: object) -> object:
    """Return the argument as it arrived."""
    return value


@task(name="dash.boom")
def boom(message: str = "boom") -> None:
    """Always fail, three frames deep (a traceback worth showing)."""

    def inner() -> None:
        raise ValueError(message)

    inner()


@task(name="dash.nap")
async def nap(seconds: float, value: int = 0) -> int:
    """Sleep, then return ``value``."""
    await trio.sleep(seconds)
    return value


@task(name="dash.hourly", repeat_interval=3600.0)
def hourly() -> None:
    """A periodic task (every hour)."""
