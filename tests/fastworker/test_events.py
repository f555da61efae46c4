"""events(): task and worker events pushed to subscribed clients."""

from __future__ import annotations

from typing import Any

import trio
from fw_support import start_following, statuses_of, wait_for_event

from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_a_client_sees_the_life_of_its_task(autojump_clock: Any) -> None:
    """A task's events arrive in order: queued, running, success, with name and worker."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, cluster.client)
                task_id = await cluster.client.delay("async_add", 1, 2)
                done = await wait_for_event(events, id=task_id, status="success")
                nursery.cancel_scope.cancel()
        assert statuses_of(events, task_id) == ["queued", "running", "success"]
        assert done.kind == "task"
        assert done.name == "async_add"
        assert done.worker == cluster.subworkers[0].node_id[:8]
        clock = cluster.control_plane.clock
        assert done.at <= clock.now()


async def test_failure_cancel_and_schedule_events(autojump_clock: Any) -> None:
    """Failures, cancellations and scheduled tasks are reported with their statuses."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, client)
                failed = await client.delay("picky", "k", "TypeError")
                await wait_for_event(events, id=failed, status="failure")
                scheduled = await client.delay("stamp", "later", countdown=60)
                await wait_for_event(events, id=scheduled, status="scheduled")
                assert await client.cancel(scheduled)
                await wait_for_event(events, id=scheduled, status="cancelled")
                nursery.cancel_scope.cancel()
        assert statuses_of(events, failed) == ["queued", "running", "failure"]
        assert statuses_of(events, scheduled) == ["scheduled", "cancelled"]


async def test_worker_joined_and_left_events(autojump_clock: Any) -> None:
    """Adding a subworker emits a worker "joined" event; killing it emits "left"."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, cluster.client)
                node = await cluster.add_subworker()
                joined = await wait_for_event(events, kind="worker", status="joined")
                await cluster.kill_subworker(0)
                left = await wait_for_event(events, kind="worker", status="left")
                nursery.cancel_scope.cancel()
        assert joined.id == left.id
        assert joined.id.split("/")[0] == node.node_id[:8]


async def test_every_subscribed_client_gets_the_events(autojump_clock: Any) -> None:
    """Two clients following events both see the same task events, in the same order."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            async with cluster.open_client() as other, trio.open_nursery() as nursery:
                mine = await start_following(nursery, cluster.client)
                theirs = await start_following(nursery, other)
                first = await cluster.client.delay("async_add", 1, 1)
                await wait_for_event(mine, id=first, status="success")
                await wait_for_event(theirs, id=first, status="success")
                nursery.cancel_scope.cancel()
        assert statuses_of(mine, first) == statuses_of(theirs, first)


async def test_a_client_that_stopped_following_is_unsubscribed(autojump_clock: Any) -> None:
    """After the last events() consumer ends, the control plane stops pushing to that client."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        core = cluster.control_plane.control_plane
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, cluster.client)
                task_id = await cluster.client.delay("async_add", 1, 1)
                await wait_for_event(events, id=task_id, status="success")
                assert len(core.events.subscribers) == 1
                nursery.cancel_scope.cancel()
            assert cluster.client._event_channels == []
            # The unsubscribe travels ahead of this call on the same link.
            assert await cluster.client.call("async_add", 2, 2) == 4
        assert core.events.subscribers == []
