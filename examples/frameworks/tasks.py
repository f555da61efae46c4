"""Tasks the framework examples hand off: one sync, one async."""

from __future__ import annotations

import re

import trio
import trio.lowlevel

from fastworker import task


@task(name="frameworks.slugify")
def slugify(text: str) -> str:
    """A URL slug of ``text`` (a sync task: it runs in a worker thread)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@task(name="frameworks.word_count")
async def word_count(text: str) -> dict[str, int]:
    """Words and distinct words of ``text`` (an async task: it runs in the worker's loop)."""
    await trio.lowlevel.checkpoint()
    words = text.split()
    return {"words": len(words), "unique": len(set(words))}
