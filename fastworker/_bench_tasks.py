"""The tasks ``fastworker bench`` runs."""

import time

import trio

from ._registry import task


@task(name="bench.add")
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@task(name="bench.total")
def total(values: list[int]) -> int:
    """The sum of a list (a chord's callback)."""
    return sum(values)


@task(name="bench.blob")
async def blob(size: int, at: float) -> bytes:
    """Wait until wall-clock time ``at``, then return ``size`` bytes (a burst of results)."""
    await trio.sleep(max(0.0, at - time.time()))
    return b"x" * size
