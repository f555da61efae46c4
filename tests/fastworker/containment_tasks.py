"""Tasks for the containment tests (wire limits, blocked loops, failure logs)."""

from __future__ import annotations

import time

import trio

from fastworker import task

MIB = 1024 * 1024

_gates: dict[str, trio.Event] = {}
runs: dict[str, int] = {}


def gate(tag: str) -> trio.Event:
    """The event ``big_after_gate(tag, ...)`` waits for."""
    return _gates.setdefault(tag, trio.Event())


def reset() -> None:
    """Forget gates and run counts."""
    _gates.clear()
    runs.clear()


@task
async def big_after_gate(tag: str, size: int) -> bytes:
    """Wait for ``gate(tag)``, then return ``size`` bytes (many finish at once)."""
    runs[tag] = runs.get(tag, 0) + 1
    await gate(tag).wait()
    return b"x" * size


@task
async def big_now(size: int) -> bytes:
    """Return ``size`` bytes at once."""
    await trio.lowlevel.checkpoint()
    return b"y" * size


@task
async def block_loop(seconds: float) -> str:
    """An async task that wrongly blocks its event loop with time.sleep."""
    time.sleep(seconds)  # noqa: ASYNC251 (the mistake this task exists to make)
    return "woke"


@task
async def fails_loudly(message: str) -> None:
    """Always raise RuntimeError(message)."""
    await trio.lowlevel.checkpoint()
    raise RuntimeError(message)


@task
async def nap(seconds: float) -> float:
    """An innocent neighbour: sleep politely, return the seconds."""
    await trio.sleep(seconds)
    return seconds
