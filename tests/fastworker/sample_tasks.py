"""Tasks used by the fastworker test suite."""

from __future__ import annotations

import time

import trio

from fastworker import Priority, task

calls: dict[str, int] = {}
events: list[str] = []


@task
def add(x: int, y: int) -> int:
    """Add two numbers (sync, runs in a worker thread)."""
    return x + y


@task
async def async_add(x: int, y: int) -> int:
    """Add two numbers in the trio loop."""
    await trio.sleep(0)
    return x + y


@task(name="sleepy")
async def sleepy(seconds: float, tag: str = "") -> str:
    """Sleep, recording start and finally (for cancellation tests)."""
    events.append(f"start:{tag}")
    try:
        await trio.sleep(seconds)
    finally:
        events.append(f"finally:{tag}")
    return tag


@task
def boom(message: str) -> None:
    """Always raise ValueError."""
    raise ValueError(message)


@task(retries=5, retry_backoff=2.0)
def flaky(key: str, fail_times: int) -> str:
    """Fail the first ``fail_times`` calls for ``key``, then succeed."""
    calls[key] = calls.get(key, 0) + 1
    if calls[key] <= fail_times:
        raise RuntimeError(f"attempt {calls[key]} fails")
    return f"ok after {calls[key]}"


@task(timeout=1.0)
async def slow_async(seconds: float) -> str:
    """Sleep longer than the timeout allows."""
    await trio.sleep(seconds)
    return "done"


@task(priority=Priority.LOW)
def record(tag: str) -> str:
    """Record the order tasks ran in."""
    events.append(tag)
    return tag


@task
def blocking_sleep(seconds: float) -> float:
    """Block a worker thread."""
    time.sleep(seconds)
    return seconds
