"""The tasks of the workflow example: fetch a page, parse it, fan out, publish.

Nothing here touches the network: ``fetch`` makes up a page from its URL, so the
example runs anywhere, and ``fetch`` of a URL containing "missing" fails the way a
real fetch would (after its retries).
"""

from __future__ import annotations

import re
from typing import Any

import trio

from fastworker import task


@task(name="pipeline.fetch", retries=2, retry_backoff=0.05)
async def fetch(url: str) -> str:
    """Download ``url`` (simulated): the page's HTML."""
    await trio.sleep(0.05)
    if "missing" in url:
        raise LookupError(f"404 Not Found: {url}")
    slug = url.rstrip("/").rsplit("/", 1)[-1]
    images = "".join(f'<img src="{slug}-{i}.png">' for i in range(3))
    return f"<html><title>{slug.title()}</title><body>{images}</body></html>"


@task(name="pipeline.parse")
def parse(html: str) -> dict[str, Any]:
    """The page's title and image paths."""
    title = re.search(r"<title>(.*?)</title>", html)
    return {
        "title": title.group(1) if title else "",
        "images": re.findall(r'<img src="([^"]+)"', html),
    }


@task(name="pipeline.thumbnails")
async def thumbnails(page: dict[str, Any], size: int) -> list[str]:
    """Thumbnails of the page's images at ``size`` pixels (simulated: their names)."""
    await trio.sleep(0.01 * len(page["images"]))
    return [f"{path}@{size}px" for path in page["images"]]


@task(name="pipeline.summary")
def summary(page: dict[str, Any]) -> str:
    """A one-line summary of the page."""
    return f"{page['title']}: {len(page['images'])} images"


@task(name="pipeline.publish")
def publish(parts: list[Any], channel: str) -> str:
    """Publish the fanned-out parts on ``channel``; returns what was published."""
    small, large, line = parts
    return f"[{channel}] {line} ({len(small)} small, {len(large)} large thumbnails)"


@task(name="pipeline.slow")
async def slow(seconds: float) -> float:
    """Sleep (the example cancels a workflow while this runs)."""
    await trio.sleep(seconds)
    return seconds
