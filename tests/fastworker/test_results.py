"""Results and status: get_result vs result, the cache's LRU and TTL, TaskNotFound."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio
import trio.testing

import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_get_result_does_not_wait_and_result_does(autojump_clock: Any) -> None:
    """get_result() is None while the task runs; result() blocks until it is terminal."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        got: list[fastworker.TaskResult] = []
        with trio.fail_after(10):
            task_id = await client.delay("hold", "r")
            await sample_tasks.started("r").wait()
            assert await client.get_result(task_id) is None

            async def waiter() -> None:
                got.append(await client.result(task_id))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                assert got == []  # result() is still waiting
                sample_tasks.gate("r").set()
            fetched = await client.get_result(task_id)
        assert got[0].status is TaskStatus.SUCCESS
        assert got[0].value == "r"
        assert fetched == got[0]


async def test_task_result_fields(autojump_clock: Any) -> None:
    """A TaskResult carries id, name, status, value, attempts, worker and timestamps."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            task_id = await cluster.client.delay("async_add", 40, 2)
            result = await cluster.client.result(task_id)
        assert result.task_id == task_id
        assert result.name == "async_add"
        assert result.status is TaskStatus.SUCCESS
        assert result.ok
        assert result.value == 42
        assert result.error is None
        assert result.attempts == 1
        assert result.worker == cluster.subworkers[0].node_id[:8]
        assert result.started_at is not None
        assert result.completed_at is not None
        assert result.completed_at >= result.started_at


async def test_status_goes_queued_running_success(autojump_clock: Any) -> None:
    """status() reports queued (waiting for the slot), running, then success; None if unknown."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            first = await client.delay("hold", "first")
            await sample_tasks.started("first").wait()
            second = await client.delay("hold", "second")
            assert await client.status(first) is TaskStatus.RUNNING
            assert await client.status(second) is TaskStatus.QUEUED
            sample_tasks.gate("first").set()
            await sample_tasks.started("second").wait()
            assert await client.status(first) is TaskStatus.SUCCESS
            assert await client.status(second) is TaskStatus.RUNNING
            sample_tasks.gate("second").set()
            await client.result(second)
            assert await client.status(second) is TaskStatus.SUCCESS
            assert await client.status("never-submitted") is None


async def test_result_of_a_never_submitted_id_raises_task_not_found(autojump_clock: Any) -> None:
    """result() of an unknown id raises TaskNotFound at once instead of waiting forever."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            with pytest.raises(fastworker.TaskNotFound, match="never submitted"):
                await cluster.client.result("no-such-id")
            assert await cluster.client.get_result("no-such-id") is None
        assert cluster.client._waiters == {}


async def test_result_cache_lru_evicts_old_results(autojump_clock: Any) -> None:
    """With result_cache_size=3, only the 3 newest results are kept; older ones are gone."""
    async with open_cluster(TASKS, subworkers=1, result_cache_size=3) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            ids = []
            for i in range(5):
                task_id = await client.delay("async_add", i, 0)
                await client.result(task_id)
                ids.append(task_id)
            kept = [await client.get_result(task_id) for task_id in ids]
            assert kept[:2] == [None, None]
            assert [r.value for r in kept[2:] if r is not None] == [2, 3, 4]
            assert await client.status(ids[0]) is None
            with pytest.raises(fastworker.TaskNotFound, match="expired"):
                await client.result(ids[0])
        assert cluster.control_plane.cache.store.evicted == 2


async def test_result_cache_ttl_expires_results(autojump_clock: Any) -> None:
    """With result_ttl=10, a result is there at 9 s and gone after 10 s (virtual time)."""
    async with open_cluster(TASKS, subworkers=1, result_ttl=10.0) as cluster:
        client = cluster.client
        with trio.fail_after(100):
            task_id = await client.delay("async_add", 1, 1)
            await client.result(task_id)
            await trio.sleep(9)
            assert (await client.get_result(task_id)) is not None
            await trio.sleep(1.5)
            assert await client.get_result(task_id) is None
            assert await client.status(task_id) is None
            with pytest.raises(fastworker.TaskNotFound):
                await client.result(task_id)


async def test_a_waiter_registered_after_completion_still_gets_the_result(
    autojump_clock: Any,
) -> None:
    """result() called long after the task finished returns the cached result at once."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(100):
            task_id = await cluster.client.delay("async_add", 5, 5)
            await trio.sleep(30)
            before = trio.current_time()
            result = await cluster.client.result(task_id)
            assert trio.current_time() - before < 0.1
        assert result.value == 10


async def test_many_waiters_on_one_task_all_wake(autojump_clock: Any) -> None:
    """Several concurrent result() calls for the same id all get the result."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        got: list[Any] = []
        with trio.fail_after(10):
            task_id = await cluster.client.delay("hold", "shared")

            async def waiter() -> None:
                got.append((await cluster.client.result(task_id)).value)

            async def other_waiter() -> None:
                got.append((await other.result(task_id)).value)

            async with cluster.open_client() as other, trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(waiter)
                nursery.start_soon(other_waiter)
                await trio.testing.wait_all_tasks_blocked()
                sample_tasks.gate("shared").set()
        assert got == ["shared"] * 4


async def test_gather_waits_for_many_results_in_order(autojump_clock: Any) -> None:
    """gather() returns the TaskResults of many ids, in the order asked, repeats included."""
    async with open_cluster(TASKS, subworkers=2) as cluster:
        with trio.fail_after(30):
            ids = await cluster.client.delay_batch(
                [("concurrency_probe", (0.1 * i,)) for i in range(6)]
            )
            results = await cluster.client.gather([*reversed(ids), ids[0]])
            with pytest.raises(fastworker.TaskNotFound):
                await cluster.client.gather([ids[1], "no-such-id"])
        assert [r.task_id for r in results] == [*reversed(ids), ids[0]]
        assert all(r.ok for r in results)


async def test_closing_a_client_ends_its_waiting_calls(autojump_clock: Any) -> None:
    """result() and events() running outside the client's block do not hang when it closes:
    the waiting result raises ConnectionFailed and the event stream ends."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        outcomes: list[Any] = []

        async def wait_result(client: fastworker.Client, task_id: str) -> None:
            try:
                await client.result(task_id)
            except fastworker.ConnectionFailed as exc:
                outcomes.append(exc)

        async def follow(client: fastworker.Client) -> None:
            async for _ in client.events():
                pass
            outcomes.append("events ended")

        with trio.fail_after(10):
            task_id = await cluster.client.delay("hold", "forever")
            async with trio.open_nursery() as nursery:
                async with cluster.open_client() as other:
                    nursery.start_soon(wait_result, other, task_id)
                    nursery.start_soon(follow, other)
                    await trio.testing.wait_all_tasks_blocked()
        assert len(outcomes) == 2
        assert "events ended" in outcomes
        [error] = [o for o in outcomes if o != "events ended"]
        assert "closed while waiting" in str(error)
