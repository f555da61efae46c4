"""Submitting: per-client result routing, all-or-nothing batches, argument validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import sample_tasks
import trio

import fastworker
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


def record_deliveries(client: fastworker.Client) -> list[str]:
    """Wrap the client's delivery hook; the returned list gets every outcome id pushed to it."""
    seen: list[str] = []
    deliver = client._deliver

    def spy(outcomes: list[Any]) -> None:
        seen.extend(outcome.id for outcome in outcomes)
        deliver(outcomes)

    client._deliver = spy  # type: ignore[method-assign]
    return seen


async def queued_total(cluster: Any) -> int:
    """How many tasks are waiting in the control plane's queues."""
    stats = await cluster.control_plane.statistics()
    return stats.queued.critical + stats.queued.high + stats.queued.normal + stats.queued.low


async def test_two_clients_each_get_only_their_own_results(autojump_clock: Any) -> None:
    """Concurrent call()s from two clients get their own values; no outcome crosses over."""
    async with open_cluster(TASKS, subworkers=2, concurrency=4) as cluster:
        async with cluster.open_client() as other:
            first_seen = record_deliveries(cluster.client)
            other_seen = record_deliveries(other)
            values: dict[str, list[tuple[int, int]]] = {"first": [], "other": []}

            async def caller(label: str, client: fastworker.Client, base: int) -> None:
                for i in range(20):
                    value = await client.call("async_add", base, i)
                    values[label].append((i, value))

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(caller, "first", cluster.client, 1000)
                    nursery.start_soon(caller, "other", other, 2000)
        assert values["first"] == [(i, 1000 + i) for i in range(20)]
        assert values["other"] == [(i, 2000 + i) for i in range(20)]
        assert len(first_seen) == len(set(first_seen)) == 20
        assert len(other_seen) == len(set(other_seen)) == 20
        assert not set(first_seen) & set(other_seen)
        # Ids carry the submitting client's random prefix: each saw only its own.
        assert {i.split("-")[0] for i in first_seen} == {cluster.client._prefix}
        assert {i.split("-")[0] for i in other_seen} == {other._prefix}


async def test_a_client_waiting_on_another_clients_task_gets_it(autojump_clock: Any) -> None:
    """result() may wait for a task submitted by another client; the submitter is not sent it."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        async with cluster.open_client() as other:
            submitter_seen = record_deliveries(cluster.client)
            with trio.fail_after(10):
                task_id = await cluster.client.delay("async_add", 2, 3)
                result = await other.result(task_id)
                assert result.value == 5
                assert await cluster.client.call("async_add", 1, 1) == 2
            assert task_id not in submitter_seen


async def test_batch_runs_every_task_exactly_once(autojump_clock: Any) -> None:
    """delay_batch returns one id per item, in order, and each task runs exactly once."""
    async with open_cluster(TASKS, subworkers=2, concurrency=3) as cluster:
        items = [("count_call", (f"k{i}",), {}) for i in range(30)]
        with trio.fail_after(30):
            ids = await cluster.client.delay_batch(items)
            assert len(ids) == len(set(ids)) == 30
            results = [await cluster.client.result(task_id) for task_id in ids]
        assert [r.value for r in results] == [f"k{i}" for i in range(30)]
        assert all(r.status is fastworker.TaskStatus.SUCCESS for r in results)
        assert sample_tasks.calls == {f"k{i}": 1 for i in range(30)}
        assert cluster.control_plane.cache.store.stored == 30


async def test_batch_items_may_omit_kwargs_and_take_a_priority(autojump_clock: Any) -> None:
    """(name, args) items work, and the batch-wide priority applies to every task."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        with trio.fail_after(10):
            sample_tasks.gate("blocker")
            await cluster.client.delay("hold", "blocker")
            await sample_tasks.started("blocker").wait()
            await cluster.client.delay("note", "normal")
            await cluster.client.delay_batch([("note", ["b1"]), ("note", ["b2"])], priority="high")
            sample_tasks.gate("blocker").set()
            last = await cluster.client.delay("note", "last", priority="low")
            await cluster.client.result(last)
        assert [e for e in sample_tasks.events if ":" not in e] == ["b1", "b2", "normal", "last"]


async def test_batch_bigger_than_the_room_is_refused_whole(autojump_clock: Any) -> None:
    """Past max_queue a batch raises QueueFull and none of it is queued or ever runs."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0, max_queue=5) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            singles = [await client.delay("count_call", f"single{i}") for i in range(3)]
            with pytest.raises(fastworker.QueueFull, match="queue is full"):
                await client.delay_batch([("count_call", (f"refused{i}",)) for i in range(3)])
            assert await queued_total(cluster) == 3
            with pytest.raises(fastworker.QueueFull):
                await client.delay_batch([("count_call", (f"big{i}",)) for i in range(6)])
            assert await queued_total(cluster) == 3
            fitting = await client.delay_batch([("count_call", (f"fits{i}",)) for i in range(2)])
            with pytest.raises(fastworker.QueueFull):
                await client.delay("count_call", "one-too-many")
            assert await queued_total(cluster) == 5
            await cluster.add_subworker()
            for task_id in singles + fitting:
                assert (await client.result(task_id)).ok
        assert sample_tasks.calls == {
            "single0": 1,
            "single1": 1,
            "single2": 1,
            "fits0": 1,
            "fits1": 1,
        }
        assert (await cluster.control_plane.statistics()).submitted == 5


async def test_batch_validation_errors_raise_before_anything_is_queued(
    autojump_clock: Any,
) -> None:
    """An unserializable argument in item 5 raises NotSerializable naming the item; none run."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as cluster:
        items: list[Any] = [("count_call", (f"k{i}",)) for i in range(8)]
        items[5] = ("count_call", (object(),))
        with trio.fail_after(10):
            with pytest.raises(fastworker.NotSerializable, match=r"batch item 5 \('count_call'\)"):
                await cluster.client.delay_batch(items)
            items[5] = ("count_call",)
            with pytest.raises(fastworker.ConfigurationError, match="batch item 5 must be"):
                await cluster.client.delay_batch(items)
            items[5] = ("count_call", ("x" * (2 * 1024 * 1024),))
            with pytest.raises(fastworker.PayloadTooLarge, match="batch item 5"):
                await cluster.client.delay_batch(items)
            stats = await cluster.control_plane.statistics()
        assert stats.submitted == 0
        assert await queued_total(cluster) == 0
        assert sample_tasks.calls == {}


async def test_unserializable_arguments_are_refused_at_submission(autojump_clock: Any) -> None:
    """An object() argument raises NotSerializable before sending, saying what to do."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            with pytest.raises(fastworker.NotSerializable, match=r"msgpack data.*is a object"):
                await cluster.client.delay("async_add", object(), 1)
            with pytest.raises(fastworker.NotSerializable, match=r"\[0\]\['when'\] is a set"):
                await cluster.client.call("async_add", {"when": {1, 2}}, 1)
            assert (await cluster.control_plane.statistics()).submitted == 0
            assert await cluster.client.call("async_add", 1, 2) == 3


async def test_huge_arguments_are_refused_with_a_pass_a_reference_hint(
    autojump_clock: Any,
) -> None:
    """Arguments over the payload limit raise PayloadTooLarge telling to pass a reference."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            with pytest.raises(fastworker.PayloadTooLarge, match="pass a reference"):
                await cluster.client.delay("async_add", b"x" * (2 * 1024 * 1024), b"")
            assert (await cluster.control_plane.statistics()).submitted == 0
            assert await cluster.client.call("async_add", 2, 2) == 4


async def test_bad_submission_options_are_configuration_errors(autojump_clock: Any) -> None:
    """Unknown priority, countdown and eta together, or a naive eta are refused locally."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            with pytest.raises(fastworker.ConfigurationError, match="unknown priority"):
                await client.delay("async_add", 1, 2, priority="urgent")
            with pytest.raises(fastworker.ConfigurationError, match="countdown or eta"):
                await client.delay("async_add", 1, 2, countdown=1, eta=1e9)
            with pytest.raises(fastworker.ConfigurationError, match="timezone-aware"):
                await client.delay("async_add", 1, 2, eta=datetime(2030, 1, 1))
            with pytest.raises(fastworker.ConfigurationError, match="non-empty string"):
                await client.delay("", 1, 2)
            assert (await cluster.control_plane.statistics()).submitted == 0


async def test_the_control_plane_enforces_its_payload_limit_too(autojump_clock: Any) -> None:
    """A client that raised its own max_payload still cannot park oversized arguments in
    the control plane: the group is refused with PayloadTooLarge, nothing is queued."""
    async with open_cluster(TASKS, subworkers=1, max_payload=4096) as cluster:
        async with cluster.open_client(max_payload=1024 * 1024) as loose:
            with trio.fail_after(10), pytest.raises(fastworker.PayloadTooLarge) as info:
                await loose.delay("add", "x" * 10_000, "y")
            assert "pass a reference" in str(info.value)
            assert (await cluster.control_plane.statistics()).submitted == 0
            assert await loose.call("add", 1, 2) == 3
