"""Containment: a task that takes down its worker costs at most its own attempts.

Suspects (tasks in flight on a lost worker) are redelivered alone on a worker; one
that is lost with its worker again fails with WorkerLost; innocent neighbours run at
most once more per loss; a cancel waiting for a slow confirmation never holds up the
client's other requests.
"""

from __future__ import annotations

from typing import Any

import sample_tasks
import trio
import trio.testing

from fastworker import TaskStatus
from fastworker.testing import Cluster, open_cluster

TASKS = ["sample_tasks"]


def _core(cluster: Cluster) -> Any:
    return cluster.control_plane.control_plane


def _index_running(cluster: Cluster, task_id: str) -> int:
    """The index (in ``cluster.subworkers``) of the subworker running ``task_id``."""
    worker = _core(cluster).tasks[task_id].worker
    assert worker is not None
    prefixes = [node.node_id[:8] for node in cluster.subworkers]
    return prefixes.index(worker.split("/")[0])


async def test_a_task_that_takes_down_its_worker_twice_fails_with_worker_lost(
    autojump_clock: Any,
) -> None:
    """The poison runs alone after the first loss; the second loss fails it; neighbours finish.

    Four tasks share a subworker with the poison; that subworker dies. All five become
    suspects and each is redelivered alone. The poison's solo run kills its worker again:
    it ends ``failure`` with WorkerLost naming the two losses, and never runs a third time.
    Each neighbour ran at most twice and succeeded; the cluster still serves.
    """
    async with open_cluster(TASKS, subworkers=2, concurrency=5, local_concurrency=0) as cluster:
        client = cluster.client
        core = _core(cluster)
        with trio.fail_after(60):
            poison = await client.delay("hold", "poison")
            await sample_tasks.started("poison").wait()
            victim = _index_running(cluster, poison)
            # Fill the poison's worker with neighbours (the other worker gets some too).
            tags = [f"n{i}" for i in range(8)]
            ids = dict(
                zip(tags, await client.delay_batch([("hold", (t,)) for t in tags]), strict=True)
            )
            for tag in tags:
                await sample_tasks.started(tag).wait()
            victim_id = core.tasks[poison].worker
            beside = {t for t in tags if core.tasks[ids[t]].worker == victim_id}
            assert beside, "some neighbours share the poison's worker"
            await cluster.kill_subworker(victim)
            sample_tasks._started.pop("poison")
            await cluster.add_subworker()
            for tag in tags:
                sample_tasks.gate(tag).set()
            # The poison runs again, alone on its worker.
            await sample_tasks.started("poison").wait()
            rec = core.tasks[poison]
            assert rec.suspect and rec.losses == 1
            assert core.pool[rec.worker].running == {poison}
            await cluster.kill_subworker(_index_running(cluster, poison))
            result = await client.result(poison)
            neighbours = {tag: await client.result(ids[tag]) for tag in tags}
            assert await client.call("add", 2, 3) == 5
        assert result.status is TaskStatus.FAILURE
        assert result.error is not None and result.error.type == "WorkerLost"
        assert "took down its worker 2 times" in result.error.message
        assert sample_tasks.calls["poison"] == 2
        for tag, res in neighbours.items():
            assert res.status is TaskStatus.SUCCESS, (tag, res)
            assert sample_tasks.calls[tag] == (2 if tag in beside else 1), tag
        stats = await cluster.control_plane.statistics()
        assert core.quarantined == 1
        assert stats.failed == 1


async def test_suspects_never_share_a_worker(autojump_clock: Any) -> None:
    """Redelivered suspects run one at a time per worker, nothing beside them.

    One subworker with four slots dies with four tasks in flight; on the single
    replacement worker the four suspects run one after another, each alone.
    """
    async with open_cluster(TASKS, subworkers=1, concurrency=4, local_concurrency=0) as cluster:
        client = cluster.client
        core = _core(cluster)
        tags = [f"s{i}" for i in range(4)]
        with trio.fail_after(60):
            ids = await client.delay_batch([("hold", (t,)) for t in tags])
            for tag in tags:
                await sample_tasks.started(tag).wait()
            await cluster.kill_subworker(0)
            for tag in tags:
                sample_tasks._started.pop(tag)
            await cluster.add_subworker()
            extra = await client.delay("note", "after")
            for tag, task_id in zip(tags, ids, strict=True):
                await sample_tasks.started(tag).wait()
                worker = core.pool[core.tasks[task_id].worker]
                assert worker.running == {task_id}, worker.running
                sample_tasks.gate(tag).set()
                assert (await client.result(task_id)).ok
            assert (await client.result(extra)).ok
        # The queued task waited until the suspects were done on the only worker.
        assert sample_tasks.events[-1] == "after"


async def test_max_worker_losses_per_task(autojump_clock: Any) -> None:
    """``@task(max_worker_losses=1)``: the first lost worker fails it with WorkerLost."""
    async with open_cluster(TASKS, subworkers=1, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            task_id = await client.delay("hold_fragile", "f")
            await sample_tasks.started("f").wait()
            await cluster.kill_subworker(0)
            result = await client.result(task_id)
        assert result.status is TaskStatus.FAILURE
        assert result.error is not None and result.error.type == "WorkerLost"
        assert sample_tasks.calls["f"] == 1


async def test_server_wide_max_worker_losses(autojump_clock: Any) -> None:
    """``max_worker_losses=3`` on the control plane: a task survives two losses, not three."""
    async with open_cluster(
        TASKS, subworkers=1, local_concurrency=0, max_worker_losses=3
    ) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            task_id = await client.delay("hold", "h")
            for _ in range(3):
                await sample_tasks.started("h").wait()
                sample_tasks._started.pop("h")
                await cluster.kill_subworker(0)
                await cluster.add_subworker()
            result = await client.result(task_id)
        assert result.status is TaskStatus.FAILURE
        assert "took down its worker 3 times" in (result.error.message if result.error else "")
        assert sample_tasks.calls["h"] == 3


async def test_a_slow_cancel_does_not_block_the_clients_other_requests(
    autojump_clock: Any,
) -> None:
    """While a cancel waits (up to cancel_timeout) for a running task, the client is served.

    The task ignores cancellation until its gate opens, so the cancel waits; meanwhile a
    status request and a whole call from the same client complete at once.
    """
    async with open_cluster(
        TASKS, subworkers=1, local_concurrency=0, cancel_timeout=30.0
    ) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            task_id = await client.delay("hold_stubborn", "c")
            await sample_tasks.started("c").wait()
            answers: list[bool] = []
            async with trio.open_nursery() as nursery:

                async def cancel() -> None:
                    answers.append(await client.cancel(task_id))

                nursery.start_soon(cancel)
                # Memory transport in this run: once every task is blocked the cancel
                # has reached the subworker and waits there for the stubborn task.
                await trio.testing.wait_all_tasks_blocked()
                try:
                    before = trio.current_time()
                    assert await client.status(task_id) is TaskStatus.RUNNING
                    assert await client.call("async_add", 1, 2) == 3
                    assert trio.current_time() - before < 1.0
                    assert not answers  # still waiting for the task to confirm
                finally:  # a failed check must not leave the stubborn task (and us) hanging
                    sample_tasks.gate("c").set()
            assert answers == [False]  # it finished (success) before it saw the cancel


async def test_a_cancelled_suspect_releases_the_worker_kept_for_it(autojump_clock: Any) -> None:
    """A suspect cancelled while it waits frees the worker emptied for it: afterwards the
    worker takes normal work on all its slots again."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2, local_concurrency=0) as cluster:
        client = cluster.client
        core = _core(cluster)
        with trio.fail_after(60):
            first, second = await client.delay_batch([("hold", ("a",)), ("hold", ("b",))])
            await sample_tasks.started("a").wait()
            await sample_tasks.started("b").wait()
            await cluster.kill_subworker(0)
            sample_tasks._started.clear()
            await cluster.add_subworker()
            await sample_tasks.started("a").wait()  # the first suspect, alone
            stats = await cluster.control_plane.statistics()
            assert stats.suspects == 1
            assert await client.cancel(second)
            sample_tasks.gate("a").set()
            assert (await client.result(first)).ok
            c, d = await client.delay_batch([("hold", ("c",)), ("hold", ("d",))])
            await sample_tasks.started("c").wait()
            await sample_tasks.started("d").wait()  # both slots in use at once
            assert not any(w.reserved or w.solo for w in core.pool)
            sample_tasks.gate("c").set()
            sample_tasks.gate("d").set()
            assert (await client.result(c)).ok and (await client.result(d)).ok
        assert (await cluster.control_plane.statistics()).suspects == 0
