"""Tasks for the crash drills (imported by the drill's processes, which run in this folder)."""

from __future__ import annotations

import trio

from fastworker import task


@task
def add(x: int, y: int) -> int:
    """Add two numbers at once (the warm-up)."""
    return x + y


@task
async def slow_add(x: int, y: int) -> int:
    """Add two numbers after 20 ms, so thousands of tasks are in flight for seconds."""
    await trio.sleep(0.02)
    return x + y


@task
def poison() -> None:
    """Kill the process running it at once (as a segfault or an OOM kill would)."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


@task
async def nap(seconds: float) -> float:
    """Sleep ``seconds`` in the trio loop."""
    await trio.sleep(seconds)
    return seconds


# -- workflows (test_workflow_durability.py) ------------------------------------------


def _log(path: str, line: str) -> None:
    with open(path, "a") as handle:
        handle.write(line + "\n")


@task
async def flow_step(value: int, tag: str, log: str, seconds: float) -> int:
    """Log ``tag`` when it starts, take ``seconds``, return ``value + 1``."""
    _log(log, tag)
    await trio.sleep(seconds)
    return value + 1


@task
async def flow_sum(values: list[int], tag: str, log: str) -> int:
    """Log ``tag`` and return the sum of ``values``."""
    _log(log, tag)
    return sum(values)
