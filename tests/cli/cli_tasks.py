"""Tasks for the CLI tests (imported by name: the CLI puts its cwd on sys.path)."""

from __future__ import annotations

import os
import sys

import trio

from fastworker import task

# A crash loop on demand: with FASTWORKER_TEST_CRASH_SUBWORKER=1, importing this module
# in a subworker process (``python -m fastworker subworker ...``) exits at once; the
# control plane process imports it fine.
if os.environ.get("FASTWORKER_TEST_CRASH_SUBWORKER") == "1" and "subworker" in sys.argv:
    os._exit(1)


@task
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@task
def boom(message: str = "boom") -> None:
    """Always fail."""
    raise ValueError(message)


@task
async def nap(seconds: float, value: int = 0) -> int:
    """Sleep, then return ``value``."""
    await trio.sleep(seconds)
    return value


@task
def whoami() -> int:
    """The pid of the process that ran the task."""
    return os.getpid()


@task(repeat_interval=3600.0)
def hourly() -> None:
    """A periodic task (every hour)."""


@task(cron="0 9 * * 1-5")
def weekday_morning() -> None:
    """A cron task (09:00 on weekdays)."""
