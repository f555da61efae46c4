"""Tasks used by the workflow tests (chains, groups, chords)."""

from __future__ import annotations

from typing import Any

import trio

from fastworker import task

runs: list[str] = []
"""The names (with arguments) of the members that ran, in order."""


@task(name="flow.inc")
async def inc(x: int, step: int = 1) -> int:
    """x + step."""
    runs.append(f"inc({x})")
    await trio.lowlevel.checkpoint()
    return x + step


@task(name="flow.double")
async def double(x: int) -> int:
    """2 * x."""
    runs.append(f"double({x})")
    return 2 * x


@task(name="flow.const")
async def const(value: Any) -> Any:
    """Return its argument (an immutable start of a chain)."""
    runs.append(f"const({value!r})")
    return value


@task(name="flow.total")
async def total(values: list[int], extra: int = 0) -> int:
    """The sum of a list plus ``extra``."""
    runs.append(f"total({len(values)})")
    return sum(values) + extra


@task(name="flow.args")
async def collect_args(*args: Any, **kwargs: Any) -> list[Any]:
    """Everything it was given, to check what a member received."""
    runs.append("args")
    return [list(args), kwargs]


@task(name="flow.fail")
async def fail(*args: Any) -> None:
    """Always raise ValueError naming its last argument."""
    runs.append(f"fail({args[-1] if args else ''})")
    raise ValueError(f"failed on {args[-1] if args else None}")


@task(name="flow.sleep")
async def sleep(seconds: float, tag: str = "") -> str:
    """Sleep, recording its start and its ``finally``."""
    runs.append(f"start:{tag}")
    try:
        await trio.sleep(seconds)
    finally:
        runs.append(f"finally:{tag}")
    return tag


@task(name="flow.trivial")
def trivial(x: int) -> int:
    """A sync no-op (the 10,000-member chord)."""
    return x


@task(name="flow.text")
async def text(size: int) -> str:
    """A string of ``size`` characters."""
    return "x" * size
