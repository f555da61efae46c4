"""The images service: its own tasks, deployed on its own subworkers.

The control plane never imports this package: a subworker started with
``--tasks examples.services.images`` announces these names (with their queues and
limits) when it joins, and the control plane routes them to it.
"""

from __future__ import annotations

import time

import trio

from fastworker import task


@task(name="images.resize", queue="images", max_concurrency=2)
async def resize(path: str, width: int, seconds: float = 0.2) -> dict[str, object]:
    """Resize an image (simulated). At most 2 run at once in the whole cluster, whatever
    the number of images subworkers: the GPU, or a licence, allows no more."""
    started = time.time()
    await trio.sleep(seconds)
    return {"path": path, "width": width, "started": started, "ended": time.time()}


@task(name="images.thumbnail", queue="images", rate_limit="5/s")
async def thumbnail(path: str) -> dict[str, object]:
    """Ask a (simulated) external API for a thumbnail: at most 5 calls a second,
    cluster-wide; calls over the limit wait queued, they never fail for it."""
    return {"path": path, "started": time.time()}


@task(name="images.archive", queue="bulk")
async def archive(path: str) -> str:
    """Bulk work on a queue of its own, so only the subworkers serving "bulk" take it."""
    await trio.sleep(0.01)
    return f"archived {path}"
