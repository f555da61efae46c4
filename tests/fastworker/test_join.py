"""``Cluster.join()``: a test waits until everything submitted so far has run."""

from __future__ import annotations

from typing import Any

import sample_tasks
import trio

from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_join_waits_for_queued_scheduled_and_retrying_tasks(autojump_clock: Any) -> None:
    """After join, tasks with a countdown and a task that needs three attempts (with
    backoff) have all finished, in virtual time; join on an idle cluster returns at once."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2) as cluster:
        client = cluster.client
        with trio.fail_after(600):
            before = trio.current_time()
            await cluster.join()  # idle
            assert trio.current_time() - before < 1.0  # at once (virtual seconds)
            ids = [await client.delay("count_call", f"c{i}", countdown=30) for i in range(3)]
            ids.append(await client.delay("flaky_async", "f", 2))
            ids += await client.delay_batch([("note", (f"n{i}",)) for i in range(20)])
            await cluster.join()
            results = [await client.get_result(task_id) for task_id in ids]
    assert all(r is not None and r.ok for r in results), results
    assert sample_tasks.calls["f"] == 3
    assert all(sample_tasks.calls[f"c{i}"] == 1 for i in range(3))


async def test_join_without_scheduled_returns_while_a_countdown_waits(
    autojump_clock: Any,
) -> None:
    """``join(scheduled=False)`` does not wait for a task scheduled an hour ahead."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(60):
            task_id = await cluster.client.delay("count_call", "later", countdown=3600)
            await cluster.join(scheduled=False)
            assert await cluster.client.get_result(task_id) is None
