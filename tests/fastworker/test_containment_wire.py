"""Containment on the wire: batches split to fit the frame limit, oversized results fail
their task with PayloadTooLarge, no send failure is silent (DESIGN.md section 2.5)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import containment_tasks
import pytest
import trio
import trio.testing

import actors
from fastworker import PayloadTooLarge, TaskFailed, TaskStatus, open_subworker
from fastworker.testing import MEMORY_LINK, open_cluster

TASKS = ["containment_tasks"]
MIB = containment_tasks.MIB


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    containment_tasks.reset()
    yield
    containment_tasks.reset()


@pytest.mark.parametrize("outbox_limit", [10_000, 2])
async def test_a_burst_of_large_results_is_all_delivered(
    autojump_clock: Any, outbox_limit: int
) -> None:
    """24 tasks each returning ~1 MiB finish at the same moment: their outcomes (24 MiB
    together, over the 16 MiB frame) reach the control plane in several messages, every
    task ends success and gather gets all 24 results. With a tiny link outbox the parts
    that find it full wait for room instead of being dropped."""
    size = MIB - 1024
    link = attrs_evolve(MEMORY_LINK, outbox_limit=outbox_limit)
    async with open_cluster(TASKS, subworkers=1, concurrency=24, link=link) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            ids = [await client.delay("big_after_gate", "burst", size) for _ in range(24)]
            await trio.testing.wait_all_tasks_blocked()
            assert containment_tasks.runs["burst"] == 24
            containment_tasks.gate("burst").set()
            results = await client.gather(ids)
        assert [r.status for r in results] == [TaskStatus.SUCCESS] * 24
        assert all(r.value == b"x" * size for r in results)
        stats = await client.stats()
        assert stats.running == 0
        assert stats.completed == 24
        sender = cluster.subworkers[0].outlet.sender
        assert sender.split >= 1  # the outcomes went in several messages
        if outbox_limit == 2:
            assert sender.waited >= 1  # some found the outbox full and waited for room


async def test_gather_of_many_finished_large_results(autojump_clock: Any) -> None:
    """20 results of ~1 MiB already in the result cache: one gather gets them all (the
    reply is split, not one oversized push that silently fails)."""
    size = MIB - 1024
    async with open_cluster(TASKS, subworkers=1, concurrency=4) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            ids = [await client.delay("big_now", size) for _ in range(20)]
            await trio.testing.wait_all_tasks_blocked()
            assert (await client.stats()).completed == 20
            results = await client.gather(ids)
        assert [r.status for r in results] == [TaskStatus.SUCCESS] * 20
        assert all(r.value == b"y" * size for r in results)


async def test_a_result_too_big_for_the_link_fails_that_task(autojump_clock: Any) -> None:
    """With frames of 256 KiB, a 300 KB result (under max_payload) cannot travel: its task
    ends failure with PayloadTooLarge (never stays running), the cluster keeps serving."""
    link = attrs_evolve(MEMORY_LINK, max_frame_size=256 * 1024)
    async with open_cluster(TASKS, subworkers=1, link=link) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            with pytest.raises(TaskFailed) as info:
                await client.call("big_now", 300_000)
            assert await client.call("big_now", 10) == b"y" * 10
            stats = await client.stats()
        error = info.value.result.error
        assert error is not None and error.type == "PayloadTooLarge"
        assert "could not be delivered" in error.message
        assert stats.running == 0


async def test_a_result_too_big_for_one_watchers_link(autojump_clock: Any) -> None:
    """A watcher whose own link takes smaller frames than the result gets that task's
    PayloadTooLarge failure instead of a hang; the stored result stays intact for others."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        small = attrs_evolve(MEMORY_LINK, max_frame_size=256 * 1024)
        with trio.fail_after(30):
            task_id = await cluster.client.delay("big_now", 300_000)
            async with cluster.open_client(link=small) as narrow:
                (result,) = await narrow.gather([task_id])
            (full,) = await cluster.client.gather([task_id])
        assert result.status is TaskStatus.FAILURE
        assert result.error is not None and result.error.type == "PayloadTooLarge"
        assert full.status is TaskStatus.SUCCESS and full.value == b"y" * 300_000


def attrs_evolve(config: actors.LinkConfig, **changes: Any) -> actors.LinkConfig:
    """``config`` with ``changes``."""
    import attrs

    return attrs.evolve(config, **changes)


async def test_an_oversized_submission_is_refused_whatever_the_clients_limit() -> None:
    """A client that raised its own max_payload sends 17 MiB: it gets PayloadTooLarge at
    once (the link knows the control plane's smaller frame limit from its hello), the link
    stays up (no reconnect loop) and the client keeps working."""
    async with open_cluster(TASKS, subworkers=1, transport="websocket") as cluster:
        with trio.fail_after(60):
            async with cluster.open_client(max_payload=64 * MIB) as client:
                with pytest.raises(PayloadTooLarge):
                    await client.delay("big_now", b"z" * (17 * MIB))
                with pytest.raises(PayloadTooLarge):
                    await client.delay("big_now", b"z" * (2 * MIB))
                assert await client.call("big_now", 3) == b"yyy"
                assert client.peer.links_opened == 1


async def test_gather_of_more_ids_than_one_frame_holds(autojump_clock: Any) -> None:
    """With 128 KiB frames, gather() of 8,000 ids (more bytes of ids than one frame)
    gets every result: the ids are watched in several messages, the results come back in
    several pushes."""
    link = attrs_evolve(MEMORY_LINK, max_frame_size=128 * 1024)
    async with open_cluster(TASKS, subworkers=1, link=link) as cluster:
        client = cluster.client
        with trio.fail_after(600):
            ids: list[str] = []
            for _ in range(8):
                ids += await client.delay_batch([("big_now", (1,))] * 1000)
            assert len("".join(ids)) > 128 * 1024
            results = await client.gather(ids)
        assert len(results) == 8000
        assert all(r.status is TaskStatus.SUCCESS and r.value == b"y" for r in results)


async def test_a_batch_too_large_for_one_frame_says_to_split_it(autojump_clock: Any) -> None:
    """delay_batch of 40 x 500 KB (20 MB, over the 16 MiB frame) is refused as a whole
    with PayloadTooLarge saying to submit smaller batches; nothing of it runs, the link
    stays up, and a smaller batch goes through."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(60):
            with pytest.raises(PayloadTooLarge, match="submit it in smaller batches"):
                await client.delay_batch([("big_now", (b"a" * 500_000,))] * 40)
            ids = await client.delay_batch([("big_now", (1,))] * 3)
            assert [r.value for r in await client.gather(ids)] == [b"y"] * 3
            stats = await client.stats()
        assert stats.submitted == 3
        assert client.peer.links_opened == 1


async def test_arguments_too_big_for_the_subworkers_link_fail_that_task(
    autojump_clock: Any,
) -> None:
    """A subworker whose link takes 256 KiB frames cannot be sent a task with 300 KB of
    arguments (under the control plane's max_payload): that task ends failure with
    PayloadTooLarge instead of staying running; a small one runs there."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as cluster:
        small = attrs_evolve(MEMORY_LINK, max_frame_size=256 * 1024)
        with trio.fail_after(30):
            async with open_subworker(
                cluster.url, tasks=TASKS, link=small, loop_watchdog=None
            ) as node:
                with pytest.raises(TaskFailed) as info:
                    await cluster.client.call("big_now", b"a" * 300_000)
                assert await cluster.client.call("big_now", 2) == b"yy"
                stats = await cluster.client.stats()
        error = info.value.result.error
        assert error is not None and error.type == "PayloadTooLarge"
        assert "could not be sent to worker" in error.message
        assert stats.running == 0
        assert node.executor.statistics().started == 1
