"""Service A of the routing tests: its own tasks, in its own module (and queue)."""

from __future__ import annotations

import trio
from routing_log import log

from fastworker import task


@task(name="svc_a.work")
async def work(tag: str) -> str:
    """Record a run and answer which service ran it."""
    log.append(("svc_a.work", tag, trio.current_time()))
    await trio.sleep(1.0)
    return f"a:{tag}"


@task(name="svc_a.resize", queue="images")
async def resize(tag: str) -> str:
    """A task of the "images" queue."""
    log.append(("svc_a.resize", tag, trio.current_time()))
    await trio.sleep(1.0)
    return f"resized:{tag}"


@task(name="svc_a.limited", max_concurrency=2)
async def limited(tag: str, seconds: float = 5.0) -> str:
    """At most two at once in the whole cluster."""
    log.append(("svc_a.limited:start", tag, trio.current_time()))
    await trio.sleep(seconds)
    log.append(("svc_a.limited:end", tag, trio.current_time()))
    return tag


@task(name="svc_a.rated", rate_limit="3/m")
async def rated(tag: str) -> str:
    """At most three starts in any minute, cluster-wide."""
    log.append(("svc_a.rated", tag, trio.current_time()))
    return tag


@task(name="svc_a.slow")
async def slow(tag: str, seconds: float = 10.0) -> str:
    """Keep a slot busy."""
    log.append(("svc_a.slow", tag, trio.current_time()))
    await trio.sleep(seconds)
    return tag
