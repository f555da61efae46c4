"""Dispatch: strict priorities, aging, concurrency limits, the local executor."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio

from fastworker import Priority, TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


def ran_order() -> list[str]:
    """The tags of ``note`` runs, in the order they ran (hold markers left out)."""
    return [e for e in sample_tasks.events if ":" not in e]


# one busy slot, local executor or one subworker with concurrency 1
ONE_SLOT = {
    "local": {"subworkers": 0, "local_concurrency": 1},
    "subworker": {"subworkers": 1, "concurrency": 1, "local_concurrency": 0},
}


@pytest.mark.parametrize("where", list(ONE_SLOT))
async def test_priorities_run_critical_first(autojump_clock: Any, where: str) -> None:
    """Behind one busy slot, queued tasks run CRITICAL, HIGH, NORMAL, LOW; FIFO within a level."""
    async with open_cluster(TASKS, **ONE_SLOT[where]) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            submitted = [
                ("low-1", Priority.LOW),
                ("normal-1", Priority.NORMAL),
                ("high-1", Priority.HIGH),
                ("critical-1", Priority.CRITICAL),
                ("low-2", "low"),
                ("critical-2", 0),
                ("normal-2", "NORMAL"),
                ("high-2", Priority.HIGH),
            ]
            ids = [await client.delay("note", tag, priority=prio) for tag, prio in submitted]
            stats = await cluster.control_plane.statistics()
            assert (stats.queued.critical, stats.queued.high) == (2, 2)
            assert (stats.queued.normal, stats.queued.low) == (2, 2)
            sample_tasks.gate("blocker").set()
            for task_id in ids:
                assert (await client.result(task_id)).ok
        assert ran_order() == [
            "critical-1",
            "critical-2",
            "high-1",
            "high-2",
            "normal-1",
            "normal-2",
            "low-1",
            "low-2",
        ]


async def test_a_tasks_default_priority_applies_and_can_be_overridden(
    autojump_clock: Any,
) -> None:
    """`record` is declared LOW: it waits behind NORMAL ones unless submitted as CRITICAL."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(600):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            ids = [
                await client.delay("record", "declared-low"),
                await client.delay("note", "normal"),
                await client.delay("record", "overridden", priority=Priority.CRITICAL),
            ]
            sample_tasks.gate("blocker").set()
            for task_id in ids:
                assert (await client.result(task_id)).ok
        assert ran_order() == ["overridden", "normal", "declared-low"]


async def test_aging_lets_an_old_low_task_overtake_newer_critical_ones(
    autojump_clock: Any,
) -> None:
    """With aging=1 s, a LOW task queued 3.5 s ago runs before CRITICAL tasks queued now."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1, aging=1.0) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            ids = [await client.delay("note", "old-low", priority="low")]
            await trio.sleep(3.5)  # virtual: the LOW task ages by three levels
            ids += [
                await client.delay("note", f"critical-{i}", priority="critical") for i in (1, 2)
            ]
            ids.append(await client.delay("note", "new-low", priority="low"))
            sample_tasks.gate("blocker").set()
            for task_id in ids:
                assert (await client.result(task_id)).ok
        assert ran_order() == ["old-low", "critical-1", "critical-2", "new-low"]


async def test_without_enough_age_critical_still_wins(autojump_clock: Any) -> None:
    """The same scenario with default aging (60 s): the CRITICAL tasks go first."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            ids = [await client.delay("note", "old-low", priority="low")]
            await trio.sleep(3.5)
            ids += [
                await client.delay("note", f"critical-{i}", priority="critical") for i in (1, 2)
            ]
            sample_tasks.gate("blocker").set()
            for task_id in ids:
                assert (await client.result(task_id)).ok
        assert ran_order() == ["critical-1", "critical-2", "old-low"]


async def test_concurrency_two_never_runs_three_at_once(autojump_clock: Any) -> None:
    """A subworker with concurrency=2 runs at most 2 tasks at a time (and does use both)."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2, local_concurrency=0) as cluster:
        with trio.fail_after(60):
            ids = await cluster.client.delay_batch([("concurrency_probe", (1.0,))] * 10)
            start = trio.current_time()
            results = [await cluster.client.result(task_id) for task_id in ids]
        assert all(r.ok for r in results)
        assert sample_tasks.probe["peak"] == 2
        # Ten 1 s tasks two at a time take 5 s of virtual time.
        assert trio.current_time() - start == pytest.approx(5.0, abs=0.1)


async def test_work_is_spread_over_subworkers_up_to_their_slots(autojump_clock: Any) -> None:
    """Two subworkers with 2 slots each: 4 tasks run at once, both workers take work."""
    async with open_cluster(TASKS, subworkers=2, concurrency=2, local_concurrency=0) as cluster:
        with trio.fail_after(60):
            ids = await cluster.client.delay_batch([("concurrency_probe", (1.0,))] * 8)
            results = [await cluster.client.result(task_id) for task_id in ids]
        assert sample_tasks.probe["peak"] == 4
        workers = {r.worker for r in results}
        assert workers == {node.node_id[:8] for node in cluster.subworkers}


async def test_local_executor_runs_tasks_without_subworkers(autojump_clock: Any) -> None:
    """With no subworker and local_concurrency > 0, the control plane runs tasks itself."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=2) as cluster:
        with trio.fail_after(10):
            task_id = await cluster.client.delay("async_add", 20, 22)
            result = await cluster.client.result(task_id)
            ids = await cluster.client.delay_batch([("concurrency_probe", (1.0,))] * 6)
            for probe_id in ids:
                await cluster.client.result(probe_id)
        assert result.value == 42
        assert result.worker == "local"
        assert sample_tasks.probe["peak"] == 2


async def test_local_executor_steps_aside_when_a_subworker_is_connected(
    autojump_clock: Any,
) -> None:
    """While a subworker is connected the local executor takes no work; it resumes after."""
    async with open_cluster(TASKS, subworkers=1, local_concurrency=2) as cluster:
        subworker_id = cluster.subworkers[0].node_id[:8]
        with trio.fail_after(10):
            ids = await cluster.client.delay_batch([("async_add", (i, i)) for i in range(6)])
            workers = {(await cluster.client.result(i)).worker for i in ids}
            assert workers == {subworker_id}
            await cluster.kill_subworker(0)
            task_id = await cluster.client.delay("async_add", 1, 1)
            assert (await cluster.client.result(task_id)).worker == "local"


async def test_without_local_executor_tasks_wait_for_a_subworker(autojump_clock: Any) -> None:
    """local_concurrency=0 and no subworker: tasks stay queued until one is added."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(100):
            task_id = await client.delay("async_add", 2, 3)
            await trio.sleep(30)  # virtual: nothing can run it, however long we wait
            assert await client.status(task_id) is TaskStatus.QUEUED
            assert await client.get_result(task_id) is None
            node = await cluster.add_subworker()
            result = await client.result(task_id)
        assert result.value == 5
        assert result.worker == node.node_id[:8]
