"""Prefetch: subworkers keep short tasks ready beyond their slots, priority stays strict.

Each test first runs ``note`` once so the control plane knows it is short (only tasks
known to be short are prefetched), then checks the worker really holds a backlog
(``free < 0`` in its stats), so the rule under test is exercised, not bypassed.
"""

from __future__ import annotations

from typing import Any

import sample_tasks
import trio
from support import wait_until

from fastworker import Priority, TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


def ran_order() -> list[str]:
    """The tags of ``note`` runs in the order they ran (hold markers and warm-up left out)."""
    return [e for e in sample_tasks.events if ":" not in e and e != "warm"]


async def worker_free(cluster: Any, node_id: str | None = None) -> list[int]:
    """Free credits of the remote workers (negative: that many wait in its backlog)."""
    stats = await cluster.control_plane.statistics()
    return [
        w.free
        for w in stats.workers
        if w.id != "local" and (node_id is None or w.id.startswith(node_id[:8]))
    ]


async def test_backlog_runs_in_priority_order_and_critical_reclaims_normal(
    autojump_clock: Any,
) -> None:
    """One slot busy, a NORMAL prefetched into the backlog: a CRITICAL submitted later
    waits for the first free slot, and the NORMAL comes back from the worker unstarted
    (reclaimed), so it cannot start first; everything runs once, CRITICAL first."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            await client.call("note", "warm")
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            normal_1 = await client.delay("note", "normal-1", priority=Priority.NORMAL)
            await wait_until(lambda: _backlog(cluster, 1), timeout=10)
            normal_2 = await client.delay("note", "normal-2", priority=Priority.NORMAL)
            critical = await client.delay("note", "critical", priority=Priority.CRITICAL)
            low = await client.delay("note", "low", priority=Priority.LOW)
            await wait_until(lambda: _queued(cluster, critical=1, normal=2, low=1), timeout=10)
            assert await worker_free(cluster) == [0]  # the backlog came back
            sample_tasks.gate("blocker").set()
            for task_id in (normal_1, normal_2, critical, low):
                assert (await client.result(task_id)).ok
        assert ran_order() == ["critical", "normal-1", "normal-2", "low"]


async def _queued(cluster: Any, **depths: int) -> bool:
    stats = await cluster.control_plane.statistics()
    return all(getattr(stats.queued, name) == depth for name, depth in depths.items())


async def _backlog(cluster: Any, size: int) -> bool:
    return any(free <= -size for free in await worker_free(cluster))


async def test_critical_never_waits_behind_unstarted_normals(autojump_clock: Any) -> None:
    """Two workers, each with a busy slot and a full NORMAL backlog: CRITICAL tasks
    submitted afterwards all run before every NORMAL that had not started."""
    async with open_cluster(TASKS, subworkers=2, concurrency=2, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            await client.call("note", "warm")
            blockers = [f"blocker-{i}" for i in range(4)]
            for tag in blockers:
                await client.delay("hold", tag)
            for tag in blockers:
                await sample_tasks.started(tag).wait()
            normals = [await client.delay("note", f"normal-{i}") for i in range(8)]
            await wait_until(lambda: _all_backlogged(cluster), timeout=10)
            criticals = [
                await client.delay("note", f"critical-{i}", priority=Priority.CRITICAL)
                for i in range(4)
            ]
            for tag in blockers:
                sample_tasks.gate(tag).set()
            for task_id in normals + criticals:
                assert (await client.result(task_id)).ok
        order = ran_order()
        assert sorted(order[:4]) == [f"critical-{i}" for i in range(4)], order
        assert sorted(order[4:]) == sorted(f"normal-{i}" for i in range(8)), order
        assert len(order) == 12, order  # nothing ran twice


async def _all_backlogged(cluster: Any) -> bool:
    free = await worker_free(cluster)
    return len(free) == 2 and all(f < 0 for f in free)


async def test_draining_worker_gives_back_unstarted_work(autojump_clock: Any) -> None:
    """A draining subworker returns its backlog at once: the prefetched task runs on
    another worker while the draining one still finishes its running task."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            await client.call("note", "warm")
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            queued = await client.delay("note", "prefetched")
            await wait_until(lambda: _backlog(cluster, 1), timeout=10)
            draining = cluster.subworkers[0]
            other = await cluster.add_subworker()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(draining.drain)
                result = await client.result(queued)
                assert result.ok and result.worker == other.node_id[:8], result
                assert not sample_tasks.finished("blocker").is_set()
                sample_tasks.gate("blocker").set()
        assert ran_order() == ["prefetched"]


async def test_lost_worker_backlog_is_requeued_and_runs_once(autojump_clock: Any) -> None:
    """A subworker killed with a task in its backlog: the task is re-queued (it never
    started) and runs exactly once on the next worker."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            await client.call("note", "warm")
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            queued = await client.delay("note", "prefetched")
            await wait_until(lambda: _backlog(cluster, 1), timeout=10)
            await cluster.kill_subworker(0)
            sample_tasks.gate("blocker").set()
            await cluster.add_subworker()
            assert (await client.result(queued)).ok
        assert ran_order() == ["prefetched"]


async def test_cancel_a_prefetched_task(autojump_clock: Any) -> None:
    """Cancelling a task waiting in a worker's backlog: it ends cancelled and never runs."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            await client.call("note", "warm")
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            queued = await client.delay("note", "prefetched")
            await wait_until(lambda: _backlog(cluster, 1), timeout=10)
            assert await client.cancel(queued) is True
            result = await client.result(queued)
            assert result.status is TaskStatus.CANCELLED, result
            sample_tasks.gate("blocker").set()
            assert await client.call("note", "after") == "after"
        assert ran_order() == ["after"]


async def test_long_tasks_are_not_prefetched(autojump_clock: Any) -> None:
    """A task not known to be short waits in the control plane, not in a worker's backlog
    (so a worker that joins later can take it)."""
    async with open_cluster(TASKS, subworkers=1, concurrency=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            await client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            await client.delay("hold", "second")
            await trio.sleep(1)
            assert await worker_free(cluster) == [0]
            stats = await cluster.control_plane.statistics()
            assert stats.queued.normal == 1, stats
            other = await cluster.add_subworker()
            await sample_tasks.started("second").wait()
            sample_tasks.gate("blocker").set()
            sample_tasks.gate("second").set()
            assert other is not None


async def test_a_worker_running_a_suspect_alone_gets_no_prefetch(autojump_clock: Any) -> None:
    """While a suspect runs alone on a worker, short tasks wait in the control plane,
    not in that worker's backlog; they run once the suspect is done."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            await client.call("note", "warm")
            suspect = await client.delay("hold", "suspect")
            await sample_tasks.started("suspect").wait()
            await cluster.kill_subworker(0)
            sample_tasks._started.pop("suspect")
            await cluster.add_subworker()
            await sample_tasks.started("suspect").wait()  # again, alone
            notes = [await client.delay("note", f"n{i}") for i in range(3)]
            await wait_until(lambda: _queued(cluster, normal=3), timeout=10)
            assert await worker_free(cluster) == [1]  # one slot busy, nothing prefetched
            sample_tasks.gate("suspect").set()
            assert (await client.result(suspect)).ok
            for task_id in notes:
                assert (await client.result(task_id)).ok
        # Each ran once (two slots: the order of the first two is trio's to choose).
        assert sorted(ran_order()) == ["n0", "n1", "n2"]
