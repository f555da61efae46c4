"""Failures come back as results naming the cause; retries, backoff, retry_on and timeouts."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sample_tasks
import trio
from fw_support import start_following, statuses_of

import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def call_failure(client: fastworker.Client, name: str, *args: Any) -> fastworker.TaskResult:
    """call() that must raise TaskFailed; returns the TaskResult it carries."""
    with pytest.raises(fastworker.TaskFailed) as info:
        await client.call(name, *args)
    result = info.value.result
    assert result is not None
    assert result.status is TaskStatus.FAILURE
    assert not result.ok
    return result


@pytest.mark.parametrize("subworkers", [1, 0], ids=["subworker", "local"])
async def test_failures_name_their_cause_and_the_cluster_keeps_serving(subworkers: int) -> None:
    """Unknown task (refused at once), wrong arity and a raised exception each fail
    clearly; calls then work."""
    async with open_cluster(TASKS, subworkers=subworkers) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            # Since capability routing, an unknown name is refused at submission.
            with pytest.raises(fastworker.TaskNotRegistered) as refused:
                await client.call("no_such_task", 1)
            assert "'no_such_task'" in str(refused.value)
            assert "add" in str(refused.value)  # it lists the known tasks
            assert await client.call("add", 1, 2) == 3

            arity = await call_failure(client, "add", 1)
            assert arity.error is not None
            assert arity.error.type == "TypeError"
            assert "add()" in arity.error.message
            assert "'y'" in arity.error.message
            assert await client.call("add", 2, 2) == 4

            keywords = await call_failure(client, "async_add", 1, 2, 3)
            assert keywords.error is not None
            assert keywords.error.type == "TypeError"
            assert await client.call("async_add", 3, 3) == 6

            raised = await call_failure(client, "boom", "the disk is on fire")
            assert raised.error is not None
            assert raised.error.type == "ValueError"
            assert raised.error.message == "the disk is on fire"
            assert "Traceback (most recent call last)" in raised.error.traceback
            assert "raise ValueError(message)" in raised.error.traceback
            assert "ValueError: the disk is on fire" in raised.error.traceback
            assert raised.attempts == 1
            assert await client.call("add", 4, 4) == 8
            stats = await cluster.control_plane.statistics()
        assert stats.failed == 3  # the refused unknown task was never accepted
        assert stats.completed == 4


async def test_task_failed_message_and_result_via_delay() -> None:
    """A failure read with result() is a TaskResult (no raise); TaskFailed names the task."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            task_id = await cluster.client.delay("boom", "bad input")
            result = await cluster.client.result(task_id)
            with pytest.raises(fastworker.TaskFailed, match=r"task boom .* ValueError: bad input"):
                await cluster.client.call("boom", "bad input")
        assert result.status is TaskStatus.FAILURE
        assert result.name == "boom"
        assert str(result.error) == "ValueError: bad input"


async def test_unknown_task_in_a_batch_refuses_the_whole_batch() -> None:
    """A batch with an unknown task name is refused whole (TaskNotRegistered): nothing is
    queued or run; the same batch without it then runs."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            with pytest.raises(fastworker.TaskNotRegistered, match="'nope'"):
                await cluster.client.delay_batch(
                    [("async_add", (1, 1)), ("nope", ()), ("async_add", (2, 2))]
                )
            stats = await cluster.control_plane.statistics()
            assert stats.submitted == 0
            ids = await cluster.client.delay_batch([("async_add", (1, 1)), ("async_add", (2, 2))])
            results = [await cluster.client.result(task_id) for task_id in ids]
        assert [r.value for r in results] == [2, 4]


async def test_an_unserializable_return_value_fails_clearly(autojump_clock: Any) -> None:
    """A task returning object() fails with NotSerializable about the task's result."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            result = await call_failure(cluster.client, "unserializable")
            assert await cluster.client.call("async_add", 1, 1) == 2
        assert result.error is not None
        assert result.error.type == "NotSerializable"
        assert "the task's result must be msgpack data" in result.error.message
        assert "is a object" in result.error.message


async def test_an_unserializable_result_is_not_retried(autojump_clock: Any) -> None:
    """The same value would fail the same way: retries are not spent on it."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            result = await call_failure(cluster.client, "unserializable_with_retries")
        assert result.error is not None and result.error.type == "NotSerializable"
        assert result.attempts == 1


async def test_an_oversized_return_value_fails_with_payload_too_large(
    autojump_clock: Any,
) -> None:
    """A result over the payload limit fails with PayloadTooLarge; a small one is fine."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            result = await call_failure(cluster.client, "huge_result", 2 * 1024 * 1024)
            assert await cluster.client.call("huge_result", 10) == b"x" * 10
        assert result.error is not None
        assert result.error.type == "PayloadTooLarge"
        assert "pass a reference" in result.error.message


# -- retries ------------------------------------------------------------------------------


async def test_retries_until_success_with_exponential_backoff(autojump_clock: Any) -> None:
    """flaky_async fails 3 times, then succeeds: 4 attempts, backoff 2 s * 2^n with jitter."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(100):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, cluster.client)
                task_id = await cluster.client.delay("flaky_async", "backoff", 3)
                result = await cluster.client.result(task_id)
                nursery.cancel_scope.cancel()
        assert result.ok
        assert result.value == 4
        assert result.attempts == 4
        times = [t for key, t in sample_tasks.runs if key == "backoff"]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        # Attempt n waits retry_backoff * 2**(n-1) scaled by a jitter in [0.5, 1].
        for n, gap in enumerate(gaps, start=1):
            full = 2.0 * 2 ** (n - 1)
            assert full * 0.5 - 1e-6 <= gap <= full + 0.01, (n, gaps)
        statuses = statuses_of(events, task_id)
        assert statuses.count("retrying") == 3
        assert statuses.count("running") == 4
        assert statuses[-1] == "success"
        assert (await cluster.control_plane.statistics()).retried == 3


async def test_sync_flaky_task_succeeds_after_failures(autojump_clock: Any) -> None:
    """The sync `flaky` task (retries=5) succeeds after 2 failures in virtual time."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10_000):  # threads let virtual time run on: be generous
            start = trio.current_time()
            value = await cluster.client.call("flaky", "sync-key", 2)
        assert value == "ok after 3"
        assert sample_tasks.calls == {"sync-key": 3}
        assert trio.current_time() - start >= 1.0 + 2.0 - 1e-6  # two backoffs, half-jittered


async def test_retries_are_bounded(autojump_clock: Any) -> None:
    """With retries=5, a task failing every time runs 6 times and then fails."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(1000):
            task_id = await cluster.client.delay("flaky_async", "hopeless", 100)
            result = await cluster.client.result(task_id)
        assert result.status is TaskStatus.FAILURE
        assert result.attempts == 6
        assert result.error is not None
        assert result.error.type == "RuntimeError"
        assert result.error.message == "attempt 6 fails"
        assert sample_tasks.calls == {"hopeless": 6}


async def test_retry_on_limits_which_exceptions_retry(autojump_clock: Any) -> None:
    """`picky` retries ValueError (retry_on) up to 3 times but fails a TypeError at once."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(1000):
            retried = await cluster.client.result(
                await cluster.client.delay("picky", "value", "ValueError")
            )
            not_retried = await cluster.client.result(
                await cluster.client.delay("picky", "type", "TypeError")
            )
        assert retried.status is TaskStatus.FAILURE
        assert retried.attempts == 4
        assert retried.error is not None
        assert retried.error.type == "ValueError"
        assert not_retried.status is TaskStatus.FAILURE
        assert not_retried.attempts == 1
        assert not_retried.error is not None
        assert not_retried.error.type == "TypeError"
        assert sample_tasks.calls == {"value": 4, "type": 1}


# -- timeouts -----------------------------------------------------------------------------


async def test_an_async_task_past_its_timeout_fails_with_task_timeout(
    autojump_clock: Any,
) -> None:
    """slow_async (timeout=1 s) asked to sleep 5 s is stopped at 1 s: call raises TaskTimeout."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        with trio.fail_after(10):
            start = trio.current_time()
            with pytest.raises(fastworker.TaskTimeout, match=r"timeout of 1\.0s") as info:
                await cluster.client.call("slow_async", 5)
            elapsed = trio.current_time() - start
            assert await cluster.client.call("slow_async", 0.5) == "done"
        assert elapsed == pytest.approx(1.0, abs=0.05)
        result = info.value.result
        assert result is not None
        assert result.error is not None
        assert result.error.type == "TaskTimeout"
        assert result.status is TaskStatus.FAILURE
        assert isinstance(info.value, fastworker.TaskFailed)


async def test_a_sync_task_past_its_timeout_is_reported_at_once() -> None:
    """A sync task cannot be interrupted, but it is reported timed out at its timeout.

    Real time (a thread really sleeps): slow_sync has timeout=0.2 s and sleeps 0.6 s; the
    TaskTimeout arrives well before the thread returns, and its late result is discarded.
    """
    async with open_cluster(TASKS, subworkers=1, concurrency=1) as cluster:
        with trio.fail_after(10):
            start = trio.current_time()
            with pytest.raises(fastworker.TaskTimeout, match="cannot be interrupted"):
                await cluster.client.call("slow_sync", 0.6)
            assert trio.current_time() - start < 0.55
            # The only slot is freed once the thread returns; then work runs again.
            assert await cluster.client.call("async_add", 1, 2) == 3
            assert trio.current_time() - start >= 0.6
        stats = await cluster.control_plane.statistics()
        assert stats.failed == 1
        assert stats.completed == 1
