"""Client.events() as a closable stream: ``async with``, ``aclose()``, bare ``async for``."""

from __future__ import annotations

import asyncio
from typing import Any

import trio
import trio.testing
from support import wait_until

import fastworker
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_async_with_subscribes_on_entry_and_unsubscribes_on_exit(
    autojump_clock: Any,
) -> None:
    """``async with client.events() as stream`` subscribes on entry (before any
    iteration), yields the task's events, and unsubscribes on exit: the control plane
    stops pushing to the client."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        core = cluster.control_plane.control_plane
        client = cluster.client
        with trio.fail_after(10):
            async with client.events() as stream:
                assert isinstance(stream, fastworker.EventStream)
                assert client.statistics().event_streams == 1
                # The subscription is a tell: let the control plane take it in.
                await trio.testing.wait_all_tasks_blocked()
                task_id = await client.delay("async_add", 1, 1)
                seen = []
                async for event in stream:
                    if event.id == task_id:
                        seen.append(event.status)
                    if event.id == task_id and event.status == "success":
                        break
            assert seen == ["queued", "running", "success"]
            assert stream.closed
            assert client.statistics().event_streams == 0
            assert await client.call("async_add", 2, 2) == 4  # the unsubscribe went first
        assert core.events.subscribers == []


async def test_aclose_from_another_task_ends_a_waiting_iteration(autojump_clock: Any) -> None:
    """aclose() called by another task wakes the task waiting in ``async for``: its loop
    ends normally; iterating a closed stream ends at once."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        ended = trio.Event()
        stream = cluster.client.events()

        async def consume() -> None:
            async for _ in stream:
                pass
            ended.set()

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await trio.testing.wait_all_tasks_blocked()
                assert cluster.client.statistics().event_streams == 1
                await stream.aclose()
                await ended.wait()
            await stream.aclose()  # idempotent
            assert [event async for event in stream] == []
        assert cluster.client.statistics().event_streams == 0


async def test_a_cancelled_wait_does_not_end_the_stream(autojump_clock: Any) -> None:
    """A timeout around one ``__anext__`` leaves the stream open: the next call still
    gets the next event (trio's channel semantics)."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            async with cluster.client.events() as stream:
                with trio.move_on_after(1):
                    await stream.__anext__()
                assert not stream.closed
                await trio.testing.wait_all_tasks_blocked()
                task_id = await cluster.client.delay("async_add", 1, 1)
                event = await stream.__anext__()
                assert event.id == task_id


async def test_a_bare_async_for_that_breaks_unsubscribes(autojump_clock: Any) -> None:
    """``async for event in client.events(): break`` (no ``async with``) still gives the
    subscription back once the stream is dropped: the control plane stops pushing."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        core = cluster.control_plane.control_plane
        client = cluster.client

        async def submit_later() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await client.delay("async_add", 1, 1)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(submit_later)
                async for event in client.events():
                    if event.kind == "task" and event.status == "success":
                        break
            await trio.lowlevel.checkpoint()
            assert cluster.client.statistics().event_streams == 0
            # The unsubscribe is a tell: wait for the control plane to take it in.
            await wait_until(
                lambda: core.events.subscribers == [],
                timeout=5,
                what="the control plane dropped the client's subscription",
                observe=lambda: core.events.subscribers,
            )


async def test_asyncio_client_events_is_closable() -> None:
    """Under asyncio, ``async with client.events() as stream`` works the same way and
    gives the subscription back on exit: the control plane stops pushing while the
    client is still connected."""

    async def app(url: str, core: Any) -> tuple[str, int, int, list[Any]]:
        async with fastworker.open_client(url) as client:
            async with client.events() as stream:
                assert isinstance(stream, fastworker.EventStream)

                async def keep_submitting() -> None:
                    while True:
                        await client.delay("add", 1, 1)
                        await asyncio.sleep(0.05)

                feeder = asyncio.ensure_future(keep_submitting())
                try:
                    event = await stream.__anext__()
                finally:
                    feeder.cancel()
                during = client.statistics().event_streams
            for _ in range(200):  # the trio side unsubscribes promptly (bounded poll)
                if client.statistics().event_streams == 0:
                    break
                await asyncio.sleep(0.01)
            for _ in range(400):  # the unsubscribe is a tell to the control plane
                if not core.events.subscribers:  # a read of its list, from this thread
                    break
                await asyncio.sleep(0.05)
            return (
                event.kind,
                during,
                client.statistics().event_streams,
                list(core.events.subscribers),
            )

    async with fastworker.open_control_plane(
        tasks=TASKS, port=0, discovery=False, local_concurrency=4
    ) as cp:
        with trio.fail_after(60):
            kind, during, after, subscribers = await trio.to_thread.run_sync(
                asyncio.run, app(cp.url, cp.control_plane), abandon_on_cancel=True
            )
    assert kind in ("task", "worker")
    assert during == 1 and after == 0
    assert subscribers == []
