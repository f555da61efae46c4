"""Service B of the routing tests: tasks no other module has."""

from __future__ import annotations

import trio
from routing_log import log

from fastworker import task


@task(name="svc_b.work")
async def work(tag: str) -> str:
    """Record a run and answer which service ran it."""
    log.append(("svc_b.work", tag, trio.current_time()))
    await trio.sleep(1.0)
    return f"b:{tag}"


@task(name="svc_b.note")
async def note(tag: str) -> str:
    """Record the order tasks ran in (no waiting)."""
    log.append(("svc_b.note", tag, trio.current_time()))
    return tag


@task(name="svc_b.slow")
async def slow(tag: str, seconds: float = 10.0) -> str:
    """Keep a slot busy."""
    log.append(("svc_b.slow", tag, trio.current_time()))
    await trio.sleep(seconds)
    return tag
