"""The client's link dropping: waiting calls resume after the reconnect."""

from __future__ import annotations

from typing import Any

import pytest
import sample_tasks
import trio
import trio.testing
from fw_support import start_following, wait_for_event

import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


def sever(client: fastworker.Client) -> None:
    """Cut the client's current memory link abruptly (code 1006, like a crash)."""
    link = client.peer.link
    assert link is not None
    link.connection.sever()  # type: ignore[attr-defined]


async def test_result_waiting_across_a_reconnect_returns_the_result(autojump_clock: Any) -> None:
    """A result() waiting when the link drops gets the result after the client reconnects.

    The task finishes while the client is cut off, so its outcome push is lost on the way;
    the client re-watches after reconnecting and gets it from the result cache.
    """
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        got: list[fastworker.TaskResult] = []
        with trio.fail_after(30):
            task_id = await client.delay("hold", "long")
            await sample_tasks.started("long").wait()

            async def waiter() -> None:
                got.append(await client.result(task_id))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(waiter)
                await trio.testing.wait_all_tasks_blocked()
                sever(client)
                sample_tasks.gate("long").set()  # it completes while the client is away
            assert client.peer.links_opened == 2
            assert client.connected
            assert await client.call("async_add", 1, 2) == 3
        assert got[0].status is TaskStatus.SUCCESS
        assert got[0].value == "long"
        assert sample_tasks.calls == {"long": 1}


async def test_call_survives_a_reconnect_while_the_task_runs(autojump_clock: Any) -> None:
    """A call() whose task is still running after the reconnect returns its value."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        got: list[Any] = []
        with trio.fail_after(30):

            async def caller() -> None:
                got.append(await client.call("hold", "running"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(caller)
                await sample_tasks.started("running").wait()
                sever(client)
                await client.peer.wait_connected()
                await trio.testing.wait_all_tasks_blocked()
                sample_tasks.gate("running").set()
        assert got == ["running"]
        assert sample_tasks.calls == {"running": 1}


async def test_events_resume_after_a_reconnect(autojump_clock: Any) -> None:
    """An events() consumer keeps receiving events after the link was cut and restored."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, client)
                sever(client)
                await client.peer.wait_connected()
                task_id = await client.delay("async_add", 1, 1)
                await wait_for_event(events, id=task_id, status="success")
                nursery.cancel_scope.cancel()


async def test_calls_made_while_disconnected_wait_for_the_reconnect(autojump_clock: Any) -> None:
    """A delay() issued right after the link drops is sent once the client is back."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            sever(client)
            value = await client.call("async_add", 20, 22)
        assert value == 42
        assert client.peer.links_opened == 2


async def test_repeated_link_cuts_never_lose_or_hang_a_call(autojump_clock: Any) -> None:
    """30 times: cut the link, then call/delay/result/get_result at once; each one succeeds.

    Calls issued while the dead link is still being torn down must wait for the
    reconnect (not spin, not fail), and a call's own submission must not be reported
    unknown by the re-watch that follows the reconnect.
    """
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        for i in range(30):
            with trio.fail_after(30):
                sever(client)
                await client.peer.wait_connected()
                assert await client.call("async_add", i, 1) == i + 1
                sever(client)
                task_id = await client.delay("async_add", i, 2)
                sever(client)
                assert (await client.result(task_id)).value == i + 2
                sever(client)
                fetched = await client.get_result(task_id)
                assert fetched is not None
                assert fetched.value == i + 2
        assert client.peer.links_opened > 30


async def test_a_client_gives_up_after_reconnect_timeout(autojump_clock: Any) -> None:
    """With the control plane gone for good, a call raises ConnectionFailed after
    reconnect_timeout (virtual seconds) instead of waiting forever."""
    control_plane_scope = trio.CancelScope()

    async def control_plane(*, task_status: Any) -> None:
        with control_plane_scope:
            await fastworker.run_control_plane(
                task_status=task_status,
                tasks=TASKS,
                url="memory://going-away",
                discovery=False,
                local_concurrency=1,
            )

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            node = await nursery.start(control_plane)
            async with fastworker.open_client(node.url, reconnect_timeout=3.0) as client:
                assert await client.call("async_add", 1, 1) == 2
                control_plane_scope.cancel()
                await client.peer.wait_disconnected()
                start = trio.current_time()
                with pytest.raises(fastworker.ConnectionFailed, match=r"unreachable for 3\.0s"):
                    await client.call("async_add", 1, 1)
                assert trio.current_time() - start == pytest.approx(3.0, abs=0.1)
