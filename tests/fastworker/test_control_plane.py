"""The ControlPlane actor driven directly: dispatch, credits, fencing, lost workers.

These tests call the actor's handlers without a running system, with fake refs that
record what the control plane sends, so each interleaving is exact and repeatable.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

import fastworker
from fastworker import Priority, TaskStatus
from fastworker._clock import WallClock
from fastworker._control_plane import (
    Accept,
    ControlPlane,
    ControlPlaneConfig,
    WorkerCompleted,
    WorkerJoined,
    WorkerLeft,
    WorkerRetiring,
)
from fastworker._errors import QueueFull
from fastworker._messages import Outcome, RunTasks, Submission, WireError
from fastworker._result_cache import Store
from fastworker._serialization import pack_arguments


class FakeRef:
    """Records every message told to it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[Any] = []

    def tell_nowait(self, message: Any, *, sender: Any = None) -> None:
        self.messages.append(message)

    def runs(self) -> list[tuple[str, int]]:
        """(task id, attempt) of every Run sent to this worker."""
        return [(r.id, r.attempt) for m in self.messages if type(m) is RunTasks for r in m.runs]


class FakeReply:
    """A reply slot: what the control plane answered a submission with."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

    def resolve(self, value: Any) -> None:
        self.value = value

    def fail(self, error: BaseException) -> None:
        self.error = error


def make_registry() -> fastworker.Registry:
    """A registry with a redeliverable task and one that opts out."""
    registry = fastworker.Registry()

    async def job(tag: str) -> str:
        return tag

    async def once(tag: str) -> str:
        return tag

    fastworker.task(registry=registry, name="job")(job)
    fastworker.task(registry=registry, name="once", redeliver=False)(once)
    return registry


def make_plane(max_queue: int = 100) -> tuple[ControlPlane, FakeRef]:
    """A ControlPlane with fake cache and scheduler refs; returns it and the cache ref."""
    cache = FakeRef("cache")
    plane = ControlPlane(
        make_registry(), cache, WallClock(), ControlPlaneConfig(max_queue=max_queue, aging=None)
    )  # type: ignore[arg-type]
    plane.scheduler = FakeRef("scheduler")  # type: ignore[assignment]
    return plane, cache


async def tell(plane: ControlPlane, *messages: Any) -> None:
    """Deliver ``messages`` as one batch, as the actor's loop does: each through
    ``receive`` (its handler table), then the batch's end (dispatch, flush)."""
    for message in messages:
        await plane.receive(None, message)  # type: ignore[arg-type]
    plane.end_batch(None)  # type: ignore[arg-type]


async def submit(
    plane: ControlPlane, *subs: tuple[str, str], priority: int | None = None
) -> FakeReply:
    """Accept one group of (id, task name) submissions, as one batch of the actor."""
    reply = FakeReply()
    group = [
        Submission(task_id, name, pack_arguments((task_id,), {}), priority)
        for task_id, name in subs
    ]
    await tell(plane, Accept([(group, reply, None)]))  # type: ignore[list-item]
    return reply


def outcome(task_id: str, attempt: int, status: str = "success", **extra: Any) -> Outcome:
    """A worker's report for one attempt."""
    return Outcome(task_id, status, attempt, **extra)


def stored(cache: FakeRef) -> list[Outcome]:
    """Every outcome sent to the result cache."""
    return [o for m in cache.messages if type(m) is Store for o in m.outcomes]


async def test_work_is_sent_only_for_free_slots() -> None:
    """A worker with 2 slots gets 2 runs; the rest wait until a completion returns credit."""
    plane, _ = make_plane()
    worker = FakeRef("w1")
    await tell(plane, WorkerJoined("w1", worker, 2))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"), ("b", "job"), ("c", "job"))
    assert worker.runs() == [("a", 1), ("b", 1)]
    assert plane.tasks["c"].status is TaskStatus.QUEUED
    await tell(plane, WorkerCompleted("w1", [outcome("a", 1)], credits=1))
    assert worker.runs() == [("a", 1), ("b", 1), ("c", 1)]


async def test_a_worker_joining_with_busy_slots_gets_only_the_free_ones() -> None:
    """A subworker re-registering with busy=1 of 2 slots is sent one task."""
    plane, _ = make_plane()
    worker = FakeRef("w1")
    await tell(plane, WorkerJoined("w1", worker, 2, busy=1))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"), ("b", "job"))
    assert worker.runs() == [("a", 1)]


async def test_a_group_is_accepted_whole_or_refused_whole() -> None:
    """With room for 3, a group of 4 is refused (QueueFull) and nothing of it is kept."""
    plane, _ = make_plane(max_queue=3)
    reply = await submit(plane, ("a", "job"), ("b", "job"), ("c", "job"), ("d", "job"))
    assert isinstance(reply.error, QueueFull)
    assert plane.tasks == {}
    assert len(plane.queue) == 0
    assert (await submit(plane, ("a", "job"), ("b", "job"), ("c", "job"))).value == 3


async def test_a_resubmission_of_the_same_ids_is_idempotent() -> None:
    """The same ids submitted again (after a dropped link) are not queued twice or re-run."""
    plane, _ = make_plane()
    worker = FakeRef("w1")
    await tell(plane, WorkerJoined("w1", worker, 4))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"), ("b", "job"))
    await submit(plane, ("a", "job"), ("b", "job"))
    assert worker.runs() == [("a", 1), ("b", 1)]
    await tell(plane, WorkerCompleted("w1", [outcome("a", 1)], credits=1))
    await submit(plane, ("a", "job"))
    assert worker.runs() == [("a", 1), ("b", 1)]
    assert plane.submitted == 2


async def test_a_late_result_of_a_lost_attempt_is_fenced_off() -> None:
    """After redelivery, attempt 1's late result is ignored; attempt 2's result counts once."""
    plane, cache = make_plane()
    first, second = FakeRef("w1"), FakeRef("w2")
    await tell(plane, WorkerJoined("w1", first, 1))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"))
    await tell(plane, WorkerJoined("w2", second, 1))  # type: ignore[arg-type]
    await tell(plane, WorkerLeft("w1", [("a", 1)], "connection lost"))
    assert second.runs() == [("a", 2)]
    await tell(plane, WorkerCompleted("w1", [outcome("a", 1, value=b"\xa3old")], credits=1))
    assert plane.tasks["a"].status is TaskStatus.RUNNING
    await tell(plane, WorkerCompleted("w2", [outcome("a", 2, value=b"\xa3new")], credits=1))
    await tell(plane, WorkerCompleted("w2", [outcome("a", 2, value=b"\xa3dup")], credits=0))
    assert [(o.id, o.attempt, o.value) for o in stored(cache)] == [("a", 2, b"\xa3new")]
    assert plane.redelivered == 1


async def test_work_dispatched_to_a_worker_already_gone_is_redelivered() -> None:
    """A task sent to a worker whose connection had already left (and so did not report it
    in flight) is re-queued when the worker's departure is handled, not lost."""
    plane, _ = make_plane()
    gone, other = FakeRef("w1"), FakeRef("w2")
    await tell(plane, WorkerJoined("w1", gone, 1))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"))  # dispatched to w1, whose connection just stopped
    assert gone.runs() == [("a", 1)]
    await tell(plane, WorkerLeft("w1", [], "connection lost"))  # its snapshot: nothing
    await tell(plane, WorkerJoined("w2", other, 1))  # type: ignore[arg-type]
    assert other.runs() == [("a", 2)]


async def test_a_task_that_opts_out_of_redelivery_fails_with_worker_lost() -> None:
    """redeliver=False: the lost task ends failed (WorkerLost) instead of being re-queued."""
    plane, cache = make_plane()
    await tell(plane, WorkerJoined("w1", FakeRef("w1"), 2))  # type: ignore[arg-type]
    await submit(plane, ("a", "once"), ("b", "job"))
    await tell(plane, WorkerLeft("w1", [("a", 1), ("b", 1)], "connection lost"))
    [lost] = stored(cache)
    assert (lost.id, lost.status) == ("a", "failure")
    assert lost.error is not None
    assert lost.error.type == "WorkerLost"
    assert plane.tasks["b"].status is TaskStatus.QUEUED


async def test_a_retryable_failure_goes_to_the_scheduler_with_backoff() -> None:
    """A retryable failure with retries left is RETRYING and scheduled, not stored."""
    plane, cache = make_plane()
    registry = plane.registry

    async def flaky() -> None:
        return None

    fastworker.task(registry=registry, name="flaky", retries=2, retry_backoff=4.0)(flaky)
    await tell(plane, WorkerJoined("w1", FakeRef("w1"), 1))  # type: ignore[arg-type]
    await submit(plane, ("a", "flaky"))
    error = WireError("RuntimeError", "nope")
    await tell(
        plane, WorkerCompleted("w1", [outcome("a", 1, "failure", error=error, retryable=True)], 1)
    )
    assert plane.tasks["a"].status is TaskStatus.RETRYING
    scheduler = plane.scheduler
    assert isinstance(scheduler, FakeRef)
    [(task_id, at)] = scheduler.messages[-1].items
    assert task_id == "a"
    assert 2.0 <= at - trio.current_time() <= 4.0  # 4 s backoff, jittered to [0.5, 1]
    await tell(
        plane, WorkerCompleted("w1", [outcome("a", 1, "failure", error=error, retryable=True)], 0)
    )
    assert stored(cache) == []


async def test_a_non_retryable_failure_is_final() -> None:
    """A failure marked not retryable is stored at once even with retries left."""
    plane, cache = make_plane()
    await tell(plane, WorkerJoined("w1", FakeRef("w1"), 1))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"))
    await tell(
        plane, WorkerCompleted("w1", [outcome("a", 1, "failure", retryable=False)], credits=1)
    )
    assert [o.status for o in stored(cache)] == ["failure"]


@pytest.mark.parametrize("level", list(Priority))
async def test_submission_priority_overrides_the_task_default(level: Priority) -> None:
    """A submission's priority wins over the task's declared one."""
    plane, _ = make_plane()
    await submit(plane, ("a", "job"), priority=int(level))
    assert plane.tasks["a"].priority == int(level)
    queued = plane.statistics().queued
    depths = [queued.critical, queued.high, queued.normal, queued.low]
    assert depths == [1 if i == int(level) else 0 for i in range(4)]


async def test_a_drained_worker_leaving_is_not_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A worker that retired (drained, as on Ctrl-C or a rolling restart) and then
    leaves with nothing in flight is logged at info level; one lost with work in flight
    still warns, naming how many tasks it handled."""
    plane, _ = make_plane()
    await tell(plane, WorkerJoined("w1", FakeRef("w1"), 2))  # type: ignore[arg-type]
    await tell(plane, WorkerJoined("w2", FakeRef("w2"), 2))  # type: ignore[arg-type]
    await submit(plane, ("a", "job"))
    worker_of_a = plane.tasks["a"].worker
    idle = "w2" if worker_of_a == "w1" else "w1"
    with caplog.at_level("INFO", logger="fastworker.control_plane"):
        await tell(plane, WorkerRetiring(idle))
        await tell(plane, WorkerLeft(idle, [], "connection closed"))
        await tell(plane, WorkerLeft(worker_of_a, [("a", 1)], "connection lost"))
    left = [(r.levelname, r.getMessage()) for r in caplog.records if " left" in r.getMessage()]
    assert left == [
        ("INFO", f"worker {idle} retired and left (connection closed)"),
        ("WARNING", f"worker {worker_of_a} left (connection lost); 1 tasks in flight handled"),
    ]
