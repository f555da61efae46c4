"""Cancellation: running async tasks are interrupted, queued ones never run, no-ops say False."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio
from fw_support import start_following, wait_for_event

import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


def task_id_of(cluster: Any, name: str) -> str:
    """The id of the single live task called ``name`` in the control plane."""
    ids = [rec.id for rec in cluster.control_plane.control_plane.tasks.values() if rec.name == name]
    assert len(ids) == 1, ids
    return ids[0]


@pytest.mark.parametrize("subworkers", [1, 0], ids=["subworker", "local"])
async def test_cancelling_a_running_async_task_interrupts_it_promptly(
    autojump_clock: Any, subworkers: int
) -> None:
    """The task's finally runs at once, status/result say cancelled, its slot comes back."""
    async with open_cluster(TASKS, subworkers=subworkers, concurrency=1, local_concurrency=1) as c:
        client = c.client
        with trio.fail_after(10):
            task_id = await client.delay("hold", "victim")
            await sample_tasks.started("victim").wait()
            assert await client.status(task_id) is TaskStatus.RUNNING
            cancelled_at = trio.current_time()
            assert await client.cancel(task_id) is True
            await sample_tasks.finished("victim").wait()
            result = await client.result(task_id)
            assert trio.current_time() - cancelled_at < 0.1  # prompt, not at some timeout
            assert await client.status(task_id) is TaskStatus.CANCELLED
            assert await client.cancel(task_id) is False
            # The one slot is free again: another task runs.
            assert await client.call("async_add", 1, 1) == 2
        assert result.status is TaskStatus.CANCELLED
        assert result.error is not None
        assert result.error.type == "TaskCancelled"
        assert sample_tasks.events == ["start:victim", "finally:victim"]
        assert sample_tasks.calls == {"victim": 1}
        executor = c.subworkers[0].executor if subworkers else c.control_plane.executor
        assert executor is not None
        assert executor.statistics().cancelled == 1
        assert executor.statistics().succeeded == 1


async def test_call_raises_task_cancelled_when_its_task_is_cancelled(autojump_clock: Any) -> None:
    """A call() whose running task is cancelled by another client raises TaskCancelled."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        raised: list[BaseException] = []

        async def caller() -> None:
            try:
                await cluster.client.call("hold", "called")
            except fastworker.TaskCancelled as exc:
                raised.append(exc)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery, cluster.open_client() as other:
                nursery.start_soon(caller)
                await sample_tasks.started("called").wait()
                assert await other.cancel(task_id_of(cluster, "hold")) is True
        assert len(raised) == 1
        assert isinstance(raised[0], fastworker.TaskCancelled)
        assert raised[0].result is not None
        assert raised[0].result.status is TaskStatus.CANCELLED
        assert "was cancelled" in str(raised[0])


async def test_cancel_of_unknown_or_finished_task_returns_false(autojump_clock: Any) -> None:
    """cancel() is False for an id never submitted and for a task that already finished."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            assert await client.cancel("no-such-task") is False
            task_id = await client.delay("async_add", 1, 2)
            result = await client.result(task_id)
            assert await client.cancel(task_id) is False
            assert (await client.result(task_id)) == result
        assert result.status is TaskStatus.SUCCESS


async def test_a_cancelled_queued_task_never_runs(autojump_clock: Any) -> None:
    """A task cancelled while queued behind a busy slot is skipped when the slot frees."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            doomed = await client.delay("count_call", "doomed")
            after = await client.delay("count_call", "after")
            assert await client.status(doomed) is TaskStatus.QUEUED
            assert await client.cancel(doomed) is True
            stats = await cluster.control_plane.statistics()
            assert stats.queued.normal == 1
            sample_tasks.gate("blocker").set()
            assert (await client.result(after)).ok
            result = await client.result(doomed)
        assert result.status is TaskStatus.CANCELLED
        assert sample_tasks.calls == {"blocker": 1, "after": 1}


async def test_a_task_cancelled_while_waiting_to_retry_never_runs_again(
    autojump_clock: Any,
) -> None:
    """Cancelling a task in its retry backoff (status retrying) stops further attempts."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, client)
                task_id = await client.delay("flaky_async", "cancelled-retry", 10)
                await wait_for_event(events, id=task_id, status="retrying")
                assert await client.status(task_id) is TaskStatus.RETRYING
                assert await client.cancel(task_id) is True
                result = await client.result(task_id)
                nursery.cancel_scope.cancel()
        await trio.sleep(100)  # virtual: long past every backoff (at most 2 s, then 4 s)
        assert result.status is TaskStatus.CANCELLED
        assert sample_tasks.calls == {"cancelled-retry": 1}


async def test_cancel_returns_after_the_running_task_has_really_stopped(
    autojump_clock: Any,
) -> None:
    """cancel() is a request, an ack and a wait: when it returns, the task's finally ran."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1) as cluster:
        with trio.fail_after(10):
            task_id = await cluster.client.delay("hold", "acked")
            await sample_tasks.started("acked").wait()
            assert await cluster.client.cancel(task_id) is True
            # No waiting on anything else: the finally has already run.
            assert sample_tasks.events == ["start:acked", "finally:acked"]
            assert await cluster.client.status(task_id) is TaskStatus.CANCELLED


async def test_cancel_of_a_running_sync_task_gives_up_waiting_after_the_bound() -> None:
    """A sync task in a thread cannot be interrupted: cancel waits cancel_timeout, then
    marks it cancelled; its late result is discarded and its slot comes back afterwards."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, cancel_timeout=0.3) as cluster:
        client = cluster.client
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                recorder = await start_following(nursery, client)
                task_id = await client.delay("blocking_sleep", 1.0)
                await wait_for_event(recorder, id=task_id, status="running")
                nursery.cancel_scope.cancel()
            asked = trio.current_time()
            assert await client.cancel(task_id) is True
            waited = trio.current_time() - asked
            result = await client.result(task_id)
            # The slot is busy until the thread returns, then free again.
            assert await client.call("add", 2, 2) == 4
        assert 0.25 <= waited < 1.0
        assert result.status is TaskStatus.CANCELLED
        assert result.error is not None and "cannot be interrupted" in result.error.message
        assert (await client.result(task_id)).status is TaskStatus.CANCELLED
