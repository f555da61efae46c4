"""Containment in the executor: a redelivered attempt that finds the old one still
running is run once and counts; failed attempts are logged, rate-limited per task name
(DESIGN.md section 2.5)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sample_tasks
import trio
from support import wait_until

import actors
from actors import open_actor_system
from fastworker import TaskStatus
from fastworker._executor import Executor, FailureLog
from fastworker._messages import Outcome, Run, RunTasks
from fastworker._registry import default_registry
from fastworker._serialization import pack_arguments
from fastworker.testing import open_cluster

TASKS = ["sample_tasks", "containment_tasks"]


def _one_subworker_with_a_real_link() -> Any:
    """One subworker with two slots, over a link whose connection can be frozen."""
    return open_cluster(
        TASKS, subworkers=1, concurrency=2, local_concurrency=0, link=actors.LinkConfig()
    )


async def _hold_then_freeze_the_link(cluster: Any, tag: str) -> str:
    """Submit ``hold(tag)``, wait until it runs, then freeze the subworker's link (its
    reports are lost until the control plane declares it gone); the task's id."""
    task_id: str = await cluster.client.delay("hold", tag)
    await sample_tasks.started(tag).wait()
    link = cluster.subworkers[0].peer.link
    assert link is not None
    link.connection.freeze()
    return task_id


async def test_a_redelivered_attempt_adopts_the_run_still_in_progress(
    autojump_clock: Any,
) -> None:
    """The subworker's link freezes mid-task: the control plane declares it lost and
    redelivers; the subworker reconnects with the old attempt still running and gets the
    new attempt. It runs once (no second start), its result counts under the new attempt
    number, and the task ends success instead of staying running forever."""
    async with _one_subworker_with_a_real_link() as cluster:
        client = cluster.client
        node = cluster.subworkers[0]
        with trio.fail_after(120):
            task_id = await _hold_then_freeze_the_link(cluster, "a")
            await wait_until(
                lambda: node.registrations >= 2 and node.executor.adopted,
                timeout=100,  # virtual seconds
                what="the subworker lost, re-registered and handed the new attempt",
                observe=lambda: (node.registrations, node.executor.adopted),
                max_poll=0.5,
            )
            assert sample_tasks.calls == {"a": 1}
            sample_tasks.gate("a").set()
            result = await client.result(task_id)
            stats = await client.stats()
        assert result.status is TaskStatus.SUCCESS and result.value == "a"
        assert result.attempts == 2
        assert sample_tasks.calls == {"a": 1}
        assert stats.running == 0
        # The slot the new attempt was given came back: both slots are free again.
        (worker,) = [w for w in stats.workers if w.slots == 2]
        assert worker.free == 2


def test_failure_log_admits_one_per_name_per_window() -> None:
    """One full entry per name per window; the next one after it carries the count."""
    limiter = FailureLog(window=60.0)
    assert limiter.admit("a", 0.0) == 0
    assert limiter.admit("a", 1.0) is None
    assert limiter.admit("a", 59.0) is None
    assert limiter.admit("b", 2.0) == 0
    assert limiter.admit("a", 60.0) == 2
    assert limiter.admit("a", 61.0) is None
    assert (limiter.logged, limiter.suppressed) == (3, 3)


async def test_failed_attempts_are_logged_with_traceback_rate_limited(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker logs a failed attempt at WARNING with its traceback; 10 more failures of
    the same task within the window are counted, not logged; the first after the window
    says how many were left out."""
    caplog.set_level(logging.WARNING, logger="fastworker.executor")
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(300):
            ids = [await client.delay("fails_loudly", f"bad {i}") for i in range(11)]
            await client.gather(ids)
            await trio.sleep(61)
            (last,) = await client.gather([await client.delay("fails_loudly", "late")])
        assert last.status is TaskStatus.FAILURE
        lines = [r.getMessage() for r in caplog.records if r.name == "fastworker.executor"]
        assert len(lines) == 2, lines
        assert "task fails_loudly" in lines[0] and "attempt 1 failed" in lines[0]
        assert "Traceback" in lines[0] and "RuntimeError: bad 0" in lines[0]
        assert "10 more failures of fails_loudly not logged" in lines[1]
        assert "RuntimeError: late" in lines[1]


async def test_a_success_lost_with_the_link_is_not_run_again(autojump_clock: Any) -> None:
    """A task finishes while its subworker's link is frozen, so its report is lost; the
    control plane redelivers it to the same subworker after the reconnect, which answers
    with the result it already has (under the new attempt) instead of running it again."""
    async with _one_subworker_with_a_real_link() as cluster:
        client = cluster.client
        node = cluster.subworkers[0]
        with trio.fail_after(120):
            task_id = await _hold_then_freeze_the_link(cluster, "b")
            sample_tasks.gate("b").set()
            await sample_tasks.finished("b").wait()
            result = await client.result(task_id)
        assert result.status is TaskStatus.SUCCESS and result.value == "b"
        assert result.attempts == 2
        assert sample_tasks.calls == {"b": 1}
        assert node.executor.reused == 1
        assert node.registrations == 2


async def test_a_new_attempt_waits_for_a_timed_out_thread_of_the_same_task() -> None:
    """Executor alone, real threads: attempt 1 of a sync task times out (reported at once)
    while its thread runs on; attempt 2 of the same task arrives meanwhile. It is neither
    dropped nor run beside the old thread: it starts when that thread returns, and its
    success is reported under attempt 2, with every slot given back."""
    reports: list[tuple[list[Outcome], int]] = []
    changed = trio.Event()

    def report(outcomes: list[Outcome], credits: int) -> None:
        nonlocal changed
        reports.append((outcomes, credits))
        changed.set()
        changed = trio.Event()

    async with open_actor_system(role="test") as system:
        executor = Executor(default_registry, 2, report, "w")
        ref = await system.spawn("executor", executor)
        with trio.fail_after(30):
            first = Run("t", "blocking_sleep", pack_arguments((1.0,), {}), 1, timeout=0.2)
            await ref.tell(RunTasks([first]))
            while not any(o for o, _ in reports):
                await changed.wait()
            second = Run("t", "blocking_sleep", pack_arguments((0.01,), {}), 2)
            await ref.tell(RunTasks([second]))
            started = trio.current_time()
            while not any(o.attempt == 2 for outcomes, _ in reports for o in outcomes):
                await changed.wait()
            waited = trio.current_time() - started
    outcomes = [o for batch, _ in reports for o in batch]
    assert [(o.attempt, o.status) for o in outcomes] == [(1, "failure"), (2, "success")]
    assert outcomes[0].error is not None and outcomes[0].error.type == "TaskTimeout"
    assert waited >= 0.5  # it waited for the old thread (1 s in, 0.2 s gone at the timeout)
    assert sum(credits for _, credits in reports) == 2
    assert executor.busy == 0
