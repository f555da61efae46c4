"""The quickstart's tasks: a sync task, an async task and a task that retries.

Run them with a whole local system (from the repository root)::

    fastworker run-actor-system --tasks examples.quickstart.tasks

and submit from another terminal::

    fastworker submit add 1 2 --wait
"""

from __future__ import annotations

import random

import trio

from fastworker import task


@task
def add(x: int, y: int) -> int:
    """Add two numbers. A plain ``def`` task runs in a worker thread of a subworker."""
    return x + y


@task
async def greet(name: str, seconds: float = 1.0) -> str:
    """Wait ``seconds``, then greet. An ``async def`` task runs in the subworker's trio loop."""
    await trio.sleep(seconds)
    return f"hello, {name}"


@task(retries=3, retry_backoff=0.2, retry_on=ConnectionError)
def fetch_quote(symbol: str, failure_rate: float = 0.3) -> dict[str, object]:
    """Pretend to call a flaky upstream service.

    It raises ``ConnectionError`` with probability ``failure_rate``; FastWorker then
    runs it again, up to 3 more times, waiting about 0.2 s, 0.4 s, 0.8 s between
    attempts (exponential backoff with jitter). Any other exception type would not
    be retried, because of ``retry_on``.
    """
    if random.random() < failure_rate:
        raise ConnectionError(f"quote service timed out for {symbol!r} (simulated)")
    return {"symbol": symbol, "price": round(random.uniform(10, 500), 2)}
