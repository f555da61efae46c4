"""A subworker dying mid-task: its tasks re-run elsewhere, or fail with WorkerLost."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio

import actors
import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_killing_a_subworker_reruns_its_tasks_elsewhere(autojump_clock: Any) -> None:
    """Tasks in flight on a killed subworker re-run on the other one; nothing lost, one result."""
    async with open_cluster(TASKS, subworkers=2, concurrency=2, local_concurrency=0) as cluster:
        client = cluster.client
        tags = [f"t{i}" for i in range(4)]
        with trio.fail_after(30):
            ids = dict(
                zip(tags, await client.delay_batch([("hold", (t,)) for t in tags]), strict=True)
            )
            for tag in tags:
                await sample_tasks.started(tag).wait()
            victim, survivor = cluster.subworkers
            on_victim = set(victim.executor._running)
            assert len(on_victim) == 2  # credits: two slots each, so two tasks each
            await cluster.kill_subworker(0)
            for tag in tags:
                sample_tasks.gate(tag).set()
            results = {tag: await client.result(ids[tag]) for tag in tags}
            # Give any stray late outcome every chance to arrive (it must be fenced).
            await trio.sleep(10)
        for tag, result in results.items():
            assert result.status is TaskStatus.SUCCESS
            assert result.value == tag
            assert result.worker == survivor.node_id[:8]
            assert result.attempts == (2 if ids[tag] in on_victim else 1)
            assert sample_tasks.calls[tag] == (2 if ids[tag] in on_victim else 1)
        store = cluster.control_plane.cache.store
        assert (store.stored, store.duplicates) == (4, 0)
        stats = await cluster.control_plane.statistics()
        assert stats.redelivered == 2
        assert stats.completed == 4
        assert [w.id.split("/")[0] for w in stats.workers] == [survivor.node_id[:8]]


async def test_redelivered_tasks_go_first_within_their_priority(autojump_clock: Any) -> None:
    """A task lost with its worker is re-queued at the head of its level, before newer ones."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            lost = await client.delay("hold", "lost")
            await sample_tasks.started("lost").wait()
            waiting = [await client.delay("note", f"queued-{i}") for i in range(2)]
            await cluster.kill_subworker(0)
            sample_tasks.gate("lost").set()
            await cluster.add_subworker(concurrency=1)
            for task_id in [lost, *waiting]:
                assert (await client.result(task_id)).ok
        assert sample_tasks.events == [
            "start:lost",
            "finally:lost",  # the killed attempt, cancelled with its process
            "start:lost",
            "finally:lost",
            "queued-0",
            "queued-1",
        ]


async def test_a_task_that_opts_out_of_redelivery_fails_with_worker_lost(
    autojump_clock: Any,
) -> None:
    """redeliver=False: when its subworker dies the task fails with WorkerLost, never re-runs."""
    async with open_cluster(TASKS, subworkers=1, local_concurrency=0) as cluster:
        client = cluster.client
        raised: list[fastworker.WorkerLost] = []

        async def caller() -> None:
            with pytest.raises(fastworker.WorkerLost) as info:
                await client.call("hold_once", "once")
            raised.append(info.value)

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller)
                await sample_tasks.started("once").wait()
                await cluster.kill_subworker(0)
            await cluster.add_subworker()
            sample_tasks.gate("once").set()
            assert await client.call("async_add", 1, 1) == 2
            await trio.sleep(10)
        assert isinstance(raised[0], fastworker.TaskFailed)
        result = raised[0].result
        assert result is not None
        assert result.status is TaskStatus.FAILURE
        assert result.error is not None
        assert result.error.type == "WorkerLost"
        assert "redeliver=False" in result.error.message
        assert sample_tasks.calls == {"once": 1}


async def test_a_worker_that_stops_answering_is_declared_dead(autojump_clock: Any) -> None:
    """A frozen subworker link (no frames, no close) is dropped by heartbeats; work re-runs."""
    async with open_cluster(
        TASKS, subworkers=2, concurrency=1, local_concurrency=0, link=actors.LinkConfig()
    ) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            ids = await client.delay_batch([("hold", ("a",)), ("hold", ("b",))])
            await sample_tasks.started("a").wait()
            await sample_tasks.started("b").wait()
            frozen = cluster.subworkers[0]
            frozen_ids = set(frozen.executor._running)
            link = frozen.peer.link
            assert link is not None
            link.connection.freeze()  # type: ignore[attr-defined]
            frozen.outlet.target = None  # a hung process reports nothing, even after a reconnect
            sample_tasks.gate("a").set()
            sample_tasks.gate("b").set()
            start = trio.current_time()
            results = [await client.result(task_id) for task_id in ids]
        assert all(r.ok for r in results)
        assert [r.attempts for r in results] == [2 if i in frozen_ids else 1 for i in ids]
        assert trio.current_time() - start >= 5.0  # noticed by the heartbeat timeout
        assert (await cluster.control_plane.statistics()).redelivered == 1
