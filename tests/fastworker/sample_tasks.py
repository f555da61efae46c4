"""Tasks used by the fastworker test suite."""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.lowlevel

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
    await trio.lowlevel.checkpoint()
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


# -- coordination helpers for the tests (reset between tests by conftest.py) --------------


class Recorder:
    """A list of values that a test can wait on: ``await recorder.wait_for(n)``."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = trio.Event()

    def append(self, item: Any) -> None:
        """Record one item and wake waiters."""
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, count: int) -> list[Any]:
        """Wait until at least ``count`` items were recorded (the caller owns the timeout)."""
        while len(self.items) < count:
            await self._changed.wait()
        return self.items


runs: list[tuple[str, float]] = []
"""(tag, trio.current_time()) for every run of the tasks that record when they ran."""

probe = {"current": 0, "peak": 0}
"""How many ``concurrency_probe`` runs are in progress now, and the most ever at once."""

_gates: dict[str, trio.Event] = {}
_started: dict[str, trio.Event] = {}
_finished: dict[str, trio.Event] = {}


def gate(tag: str) -> trio.Event:
    """The event a ``hold(tag)`` task waits for: ``gate(tag).set()`` lets it finish."""
    return _gates.setdefault(tag, trio.Event())


def started(tag: str) -> trio.Event:
    """Set when a ``hold(tag)`` run starts."""
    return _started.setdefault(tag, trio.Event())


def finished(tag: str) -> trio.Event:
    """Set when a ``hold(tag)`` run leaves (its ``finally``), however it ends."""
    return _finished.setdefault(tag, trio.Event())


def reset() -> None:
    """Forget everything recorded by earlier tests."""
    calls.clear()
    events.clear()
    runs.clear()
    probe.update(current=0, peak=0)
    _gates.clear()
    _started.clear()
    _finished.clear()


async def _hold(tag: str) -> str:
    calls[tag] = calls.get(tag, 0) + 1
    events.append(f"start:{tag}")
    started(tag).set()
    try:
        await gate(tag).wait()
    finally:
        events.append(f"finally:{tag}")
        finished(tag).set()
    return tag


@task
async def hold(tag: str) -> str:
    """Run until ``gate(tag)`` is set; counts runs, signals ``started``/``finished``."""
    return await _hold(tag)


@task(redeliver=False)
async def hold_once(tag: str) -> str:
    """Like ``hold``, but opts out of redelivery: a lost worker fails it with WorkerLost."""
    return await _hold(tag)


@task
async def stamp(tag: str) -> float:
    """Record (tag, trio time) of this run in ``runs`` and return the time."""
    now = trio.current_time()
    runs.append((tag, now))
    return now


@task
async def note(tag: str) -> str:
    """Append ``tag`` to ``events`` (the order tasks ran in)."""
    events.append(tag)
    return tag


@task
async def count_call(key: str) -> str:
    """Count the runs of ``key`` in ``calls``."""
    calls[key] = calls.get(key, 0) + 1
    return key


@task
async def concurrency_probe(seconds: float) -> int:
    """Hold a slot for ``seconds``, tracking how many probes run at once in ``probe``."""
    probe["current"] += 1
    probe["peak"] = max(probe["peak"], probe["current"])
    try:
        await trio.sleep(seconds)
    finally:
        probe["current"] -= 1
    return probe["peak"]


@task(retries=5, retry_backoff=2.0)
async def flaky_async(key: str, fail_times: int) -> int:
    """Async ``flaky``: record each attempt's time in ``runs``; fail the first ``fail_times``."""
    runs.append((key, trio.current_time()))
    calls[key] = calls.get(key, 0) + 1
    if calls[key] <= fail_times:
        raise RuntimeError(f"attempt {calls[key]} fails")
    return calls[key]


@task(retries=3, retry_backoff=0.5, retry_on=ValueError)
async def picky(key: str, error: str) -> str:
    """Raise ``error`` ("ValueError" or "TypeError") every time; only ValueError retries."""
    calls[key] = calls.get(key, 0) + 1
    if error == "ValueError":
        raise ValueError(f"{key} attempt {calls[key]}")
    raise TypeError(f"{key} attempt {calls[key]}")


@task
async def unserializable() -> object:
    """Return a value msgpack cannot carry."""
    return object()


@task
async def huge_result(size: int) -> bytes:
    """Return ``size`` bytes (over the payload limit when large)."""
    return b"x" * size


@task(timeout=0.2)
def slow_sync(seconds: float) -> float:
    """Block a worker thread past its 0.2 s timeout (a thread cannot be interrupted)."""
    time.sleep(seconds)
    return seconds


@task(retries=3, retry_backoff=0.0)
async def unserializable_with_retries() -> object:
    """Return a value msgpack cannot carry, with retries configured."""
    return object()


@task
async def hold_stubborn(tag: str) -> str:
    """Like ``hold``, but ignores cancellation until ``gate(tag)`` is set (a slow confirm)."""
    with trio.CancelScope(shield=True):
        return await _hold(tag)


@task(max_worker_losses=1)
async def hold_fragile(tag: str) -> str:
    """Like ``hold``, with ``max_worker_losses=1``: the first lost worker fails it."""
    return await _hold(tag)
