"""The client's share of containment: a slow cancel, abandoned calls and an oversized
submission never cost the client more than that one request."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from fw_support import start_following, wait_for_event

import fastworker
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_a_slow_cancel_never_blocks_the_clients_other_requests() -> None:
    """While a cancel of a running sync task waits for its ack (up to cancel_timeout),
    the same client's status, stats and calls are answered."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2, cancel_timeout=5.0) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            async with trio.open_nursery() as follow:
                recorder = await start_following(follow, client)
                task_id = await client.delay("blocking_sleep", 2.0)
                await wait_for_event(recorder, id=task_id, status="running")
                follow.cancel_scope.cancel()
            cancel_done = trio.Event()

            async def cancel() -> None:
                await client.cancel(task_id)  # True or False: the thread may win
                cancel_done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel)
                await trio.sleep(0.05)  # the cancel is on its way (ordering only, not timing)
                assert await client.call("add", 1, 2) == 3
                assert (await client.stats()).running == 1  # the task, still in its thread
                assert await client.status(task_id) is fastworker.TaskStatus.RUNNING
                # Answered while the cancel still waits for the thread to give up.
                assert not cancel_done.is_set()


async def test_calls_cancelled_before_sending_leave_no_entries(autojump_clock: Any) -> None:
    """2,000 calls cancelled before they were sent, and 200 cancelled while waiting,
    leave nothing in the client's tables."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2) as cluster:
        client = cluster.client
        for _ in range(2000):
            with trio.CancelScope() as scope:
                scope.cancel()
                await client.call("add", 1, 2)
        for _ in range(200):
            with trio.move_on_after(0):
                await client.call("sleepy", 10.0)
        stats = client.statistics()
        assert (stats.waited_ids, stats.waiters, stats.submitting) == (0, 0, 0)
        assert await client.call("add", 2, 2) == 4


async def test_a_submission_over_the_servers_frame_limit_fails_at_once() -> None:
    """A client that raised its own max_payload and sends 17 MiB gets PayloadTooLarge
    (the control plane closed the link for the frame), not a reconnect loop."""
    async with fastworker.open_control_plane(
        tasks=TASKS, port=0, discovery=False, cluster="fw-big"
    ) as cp:
        async with fastworker.open_client(
            cp.url, cluster="fw-big", max_payload=64 * 1024 * 1024
        ) as client:
            with trio.fail_after(30):
                with pytest.raises(
                    fastworker.PayloadTooLarge, match=r"frame limit|frame size|too large"
                ):
                    await client.delay("add", b"x" * (17 * 1024 * 1024), 1)
                # The client is still usable afterwards.
                assert await client.call("add", 1, 2) == 3
            assert client.statistics().submitting == 0


async def test_workflow_calls_cancelled_while_waiting_leave_no_entries(
    autojump_clock: Any,
) -> None:
    """call() of a workflow cancelled while it waits for the workflow (the caller's
    timeout) leaves no waiter behind, as call() of a task does."""
    async with open_cluster(TASKS, subworkers=1, concurrency=2) as cluster:
        client = cluster.client
        for _ in range(20):
            with trio.move_on_after(0.5):
                await client.call(fastworker.chain(fastworker.sig("sleepy", 10.0)))
        stats = client.statistics()
        assert (stats.waited_ids, stats.waiters, stats.submitting) == (0, 0, 0)
        assert await client.call(fastworker.chain(fastworker.sig("add", 2, 2))) == 4
