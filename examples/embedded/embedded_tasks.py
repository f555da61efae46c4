"""Tasks of the embedded example (a module of their own, so subworkers can import them too)."""

from __future__ import annotations

import trio

from fastworker import task


@task(name="embedded.square")
def square(n: int) -> int:
    """Square a number (sync: runs in a worker thread)."""
    return n * n


@task(name="embedded.fetch", timeout=10.0)
async def fetch(n: int) -> str:
    """Pretend to fetch page ``n`` over the network (async: runs in the trio loop)."""
    await trio.sleep(0.05)
    return f"page {n}"
