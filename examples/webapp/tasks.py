"""Tasks of the web app example."""

from __future__ import annotations

import trio

from fastworker import task


@task(name="webapp.word_count", timeout=30.0)
async def word_count(text: str, delay: float = 0.2) -> dict[str, int]:
    """Count words in ``text`` (after ``delay`` seconds, standing in for real work)."""
    await trio.sleep(delay)
    words = text.split()
    return {"words": len(words), "unique": len({w.lower() for w in words})}
