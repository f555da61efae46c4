"""Draining, statistics, the pytest plugin fixture, and the harness's limits."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio
import trio.testing

import fastworker
from fastworker import TaskStatus
from fastworker.testing import Cluster, open_cluster

TASKS = ["sample_tasks"]


async def test_drain_refuses_new_work_and_finishes_running_tasks(autojump_clock: Any) -> None:
    """drain(): new submissions raise ShuttingDown, running tasks finish, results are kept."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        drained = trio.Event()

        async def drain() -> None:
            await cluster.control_plane.drain()
            drained.set()

        with trio.fail_after(30):
            running = await client.delay("hold", "in-flight")
            await sample_tasks.started("in-flight").wait()
            queued = await client.delay("count_call", "never-started")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain)
                await trio.testing.wait_all_tasks_blocked()
                assert not drained.is_set()  # waiting for the running task
                with pytest.raises(fastworker.ShuttingDown, match="shutting down"):
                    await client.delay("async_add", 1, 1)
                sample_tasks.gate("in-flight").set()
            result = await client.result(running)
            stats = await client.stats()
        assert result.status is TaskStatus.SUCCESS
        assert stats.draining
        assert await client.status(queued) is TaskStatus.QUEUED  # never dispatched
        assert sample_tasks.calls == {"in-flight": 1}


async def test_stats_report_queues_workers_and_counters(autojump_clock: Any) -> None:
    """client.stats() shows queue depths by priority, scheduled, running and workers."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            await client.delay("hold", "busy")
            await sample_tasks.started("busy").wait()
            await client.delay("note", "h", priority="high")
            await client.delay("note", "l1", priority="low")
            await client.delay("note", "l2", priority="low")
            await client.delay("note", "later", countdown=100)
            stats = await client.stats()
            sample_tasks.gate("busy").set()
        assert (stats.queued.critical, stats.queued.high) == (0, 1)
        assert (stats.queued.normal, stats.queued.low) == (0, 2)
        assert stats.scheduled == 1
        assert stats.running == 1
        assert stats.submitted == 5
        assert [(w.slots, w.free, w.running) for w in stats.workers] == [(1, 0, 1)]
        assert not stats.draining


@pytest.mark.fastworker(tasks=TASKS, subworkers=1, concurrency=2)
async def test_pytest_plugin_fixture_gives_a_running_cluster(
    fastworker_cluster: Cluster, autojump_clock: Any
) -> None:
    """The fastworker_cluster fixture (pytest plugin) is a cluster built from the marker."""
    with trio.fail_after(10):
        assert await fastworker_cluster.client.call("async_add", 1, 2) == 3
    assert len(fastworker_cluster.subworkers) == 1
    assert fastworker_cluster.subworkers[0].executor.concurrency == 2


async def test_sync_task_timeouts_under_the_autojump_clock(autojump_clock: Any) -> None:
    """A sync task well within its 0.2 s timeout (20 ms of real work) succeeds: under the
    autojump clock the harness runs sync tasks in the loop, so virtual time stands still
    while they work (in a thread, trio would see every task blocked and leap ahead)."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10_000):
            assert await cluster.client.call("slow_sync", 0.02) == 0.02


async def test_a_draining_subworker_is_sent_no_more_work(autojump_clock: Any) -> None:
    """SubworkerNode.drain() tells the control plane first: new work goes elsewhere (here
    the local executor, which takes work again once no subworker is taking it), while the
    task already running on the subworker finishes and its result is delivered."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2, local_concurrency=1) as cluster:
        client = cluster.client
        subworker = cluster.subworkers[0]
        with trio.fail_after(30):
            running = await client.delay("hold", "draining")
            await sample_tasks.started("draining").wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(subworker.drain)
                await trio.testing.wait_all_tasks_blocked()
                later = await client.call("async_add", 2, 3)
                sample_tasks.gate("draining").set()
            result = await client.result(running)
        assert later == 5
        assert result.ok and result.worker == subworker.node_id[:8]
        stats = await cluster.control_plane.statistics()
        local = next(w for w in stats.workers if w.id == "local")
        assert local.completed == 1
