"""The public records (Event, ClusterStats ...) and the one place wire messages become
them: typed StrEnum fields that still compare, print and serialise as the strings they
replace; unknown values from a newer control plane kept, never a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs
import cattrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from sample_tasks import add

import fastworker
from actors import message_name
from fastworker import (
    ClusterStats,
    Event,
    EventKind,
    QueueStats,
    TaskStatus,
    WorkerStats,
    WorkerStatus,
)
from fastworker._messages import (
    WireClusterStats,
    WireEvent,
    WireQueueStats,
    WireWorkerStats,
)
from fastworker._records import event_from_wire, events_from_wire, stats_from_wire
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]

PAIRS = [
    (Event, WireEvent),
    (ClusterStats, WireClusterStats),
    (QueueStats, WireQueueStats),
    (WorkerStats, WireWorkerStats),
]

# -- the conversion, directly ----------------------------------------------------------------


def test_a_task_event_becomes_a_record_with_enums() -> None:
    """A wire task event becomes an Event whose kind is EventKind.TASK and status the
    TaskStatus member; every other field is copied as it came."""
    wire = WireEvent("task", "t-1", "success", "add", "w1", 12.5, "why")
    event = event_from_wire(wire)
    assert type(event) is Event
    assert event.kind is EventKind.TASK
    assert event.status is TaskStatus.SUCCESS
    assert (event.id, event.name, event.worker, event.at, event.detail) == (
        "t-1",
        "add",
        "w1",
        12.5,
        "why",
    )


@pytest.mark.parametrize("status", [s.value for s in TaskStatus])
def test_every_task_status_maps_to_its_member(status: str) -> None:
    """Each TaskStatus value on the wire maps to that very member."""
    assert event_from_wire(WireEvent("task", "t", status)).status is TaskStatus(status)


def test_worker_events_get_a_worker_status() -> None:
    """A worker event's "joined" / "left" become WorkerStatus members, not TaskStatus."""
    joined, left = events_from_wire(
        [WireEvent("worker", "w1", "joined", at=1.0), WireEvent("worker", "w1", "left", at=2.0)]
    )
    assert joined.kind is EventKind.WORKER and joined.status is WorkerStatus.JOINED
    assert left.kind is EventKind.WORKER and left.status is WorkerStatus.LEFT
    assert (joined.at, left.at) == (1.0, 2.0)


def test_a_status_from_a_newer_peer_is_kept_as_a_plain_string() -> None:
    """A status this version does not know (a newer control plane's) does not raise: the
    record keeps the raw string, which is not an enum member."""
    event = event_from_wire(WireEvent("task", "t-1", "paused", "add"))
    assert event.kind is EventKind.TASK
    assert event.status == "paused"
    assert type(event.status) is str
    worker = event_from_wire(WireEvent("worker", "w1", "draining"))
    assert worker.status == "draining" and type(worker.status) is str
    # A task status is not taken for a worker status, nor the other way round.
    assert type(event_from_wire(WireEvent("worker", "w", "success")).status) is str
    assert type(event_from_wire(WireEvent("task", "t", "joined")).status) is str


def test_a_kind_from_a_newer_peer_keeps_kind_and_status_as_strings() -> None:
    """An unknown kind is kept as it came, and so is its status (even one that happens
    to be a TaskStatus value): nothing is guessed."""
    event = event_from_wire(WireEvent("queue", "images", "success", at=3.0))
    assert event.kind == "queue" and type(event.kind) is str
    assert event.status == "success" and type(event.status) is str
    assert event.at == 3.0


# -- the enums are the strings they replace ---------------------------------------------------


@pytest.mark.parametrize(
    "member", [*EventKind, *WorkerStatus, *TaskStatus], ids=lambda m: f"{type(m).__name__}.{m.name}"
)
def test_enums_compare_print_and_serialise_as_their_strings(member: Any) -> None:
    """Every member equals its value, hashes like it (dict keys), prints and formats as
    the bare value, and JSON and cattrs give the plain string."""
    value = member.value
    assert member == value and value == member
    assert {value: 1}[member] == 1
    assert str(member) == value and f"{member}" == value and f"{member:>3}".strip() == value
    assert json.dumps(member) == json.dumps(value)
    assert json.dumps(cattrs.unstructure(member)) == json.dumps(value)


def test_records_are_frozen_slotted_and_not_wire_messages() -> None:
    """The public names are frozen slotted attrs records, distinct from the wire classes,
    and not registered as messages; the wire classes keep their message type ids (so
    peers of older and newer versions still understand each other)."""
    for record, wire in PAIRS:
        assert record is not wire
        assert attrs.has(record) and "__slots__" in record.__dict__
        assert message_name(record) is None
    assert [message_name(wire) for _, wire in PAIRS] == [
        "fw.Event",
        "fw.ClusterStats",
        "fw.QueueStats",
        "fw.WorkerStats",
    ]
    event = Event(EventKind.TASK, "t", TaskStatus.QUEUED)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.status = TaskStatus.RUNNING  # type: ignore[misc]


@pytest.mark.parametrize(("record", "wire"), PAIRS, ids=lambda c: c.__name__)
def test_records_and_wire_messages_have_the_same_fields_in_order(record: Any, wire: Any) -> None:
    """A record has the wire message's fields, in the same order with the same defaults
    (so positional construction, JSON key order and the conversion stay in step: a field
    added to one side only fails here)."""

    def shape(cls: Any) -> list[tuple[str, Any]]:
        return [(f.name, f.default) for f in attrs.fields(cls)]

    assert shape(record) == shape(wire)


def test_every_public_field_has_a_docstring() -> None:
    """Each field of the public records is documented (an attribute docstring)."""
    import ast
    import inspect

    import fastworker._records as module

    tree = ast.parse(inspect.getsource(module))
    for record, _ in PAIRS:
        node = next(
            n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == record.__name__
        )
        documented = {
            a.target.id
            for a, b in zip(node.body, node.body[1:], strict=False)
            if isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        }
        assert documented == {f.name for f in attrs.fields(record)}, record.__name__


# -- stats: the same numbers, the same JSON ---------------------------------------------------

counts = st.integers(min_value=0, max_value=2**40)
wire_stats = st.builds(
    WireClusterStats,
    queued=st.builds(WireQueueStats, counts, counts, counts, counts),
    scheduled=counts,
    running=counts,
    workers=st.lists(
        st.builds(WireWorkerStats, st.text(max_size=12), counts, counts, counts, counts),
        max_size=4,
    ),
    submitted=counts,
    completed=counts,
    failed=counts,
    retried=counts,
    redelivered=counts,
    results_cached=counts,
    draining=st.booleans(),
    waiting=st.dictionaries(st.text(max_size=12), counts, max_size=4),
    suspects=counts,
    quarantined=counts,
)


@given(wire_stats)
def test_stats_json_is_unchanged_by_the_record(wire: WireClusterStats) -> None:
    """The ClusterStats record of any wire snapshot serialises byte for byte as the wire
    message did, both as /api/v1/stats does (attrs.asdict + json) and as `fastworker top
    --json` does (cattrs.unstructure + json, sorted keys); and it round-trips through
    JSON to an equal record."""
    record = stats_from_wire(wire)
    assert type(record) is ClusterStats and type(record.queued) is QueueStats
    assert all(type(w) is WorkerStats for w in record.workers)
    assert json.dumps(attrs.asdict(record)) == json.dumps(attrs.asdict(wire))
    assert json.dumps(cattrs.unstructure(record), sort_keys=True) == json.dumps(
        cattrs.unstructure(wire), sort_keys=True
    )
    assert cattrs.structure(json.loads(json.dumps(attrs.asdict(record))), ClusterStats) == record


def test_stats_records_own_their_waiting_dict() -> None:
    """The record's ``waiting`` is its own copy: changing it leaves the wire's alone."""
    wire = WireClusterStats(
        WireQueueStats(0, 0, 1, 0), 0, 0, [], 1, 0, 0, 0, 0, 0, False, {"add": 1}
    )
    record = stats_from_wire(wire)
    assert record.waiting == {"add": 1}  # a copy of the wire's, not an empty one
    record.waiting["add"] = 5
    assert wire.waiting == {"add": 1}


@given(
    st.sampled_from(["task", "worker", "queue"]),
    st.sampled_from([*(s.value for s in TaskStatus), "joined", "left", "paused"]),
    st.text(max_size=8),
    st.one_of(st.none(), st.text(max_size=8)),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_event_json_is_unchanged_by_the_record(
    kind: str, status: str, name: str, worker: str | None, at: float
) -> None:
    """An Event record, known values or not, gives the JSON its wire event gave (the
    SSE stream and CLI output stay byte-identical)."""
    wire = WireEvent(kind, "id-1", status, name, worker, at, "")
    record = event_from_wire(wire)
    assert json.dumps(attrs.asdict(record)) == json.dumps(attrs.asdict(wire))
    assert json.dumps(cattrs.unstructure(record)) == json.dumps(cattrs.unstructure(wire))


# -- what the clients hand out ----------------------------------------------------------------


async def test_the_trio_client_hands_out_records(autojump_clock: Any) -> None:
    """events() yields Event records with EventKind / TaskStatus / WorkerStatus members
    (the control plane's statuses all map: joined, left, queued, running, success);
    stats() and the control plane node's statistics() answer ClusterStats records."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=1) as cluster:
        client = cluster.client
        with trio.fail_after(30):
            async with client.events() as stream:
                await trio.testing.wait_all_tasks_blocked()
                await cluster.add_subworker()
                task_id = await client.delay("async_add", 1, 2)
                seen: list[Event] = []
                async for event in stream:
                    seen.append(event)
                    if event.id == task_id and event.status is TaskStatus.SUCCESS:
                        break
                from_client = await client.stats()
                await cluster.kill_subworker(0)
                async for event in stream:
                    seen.append(event)
                    if event.kind is EventKind.WORKER and event.status is WorkerStatus.LEFT:
                        break
        assert all(type(e) is Event for e in seen)
        workers = [e for e in seen if e.kind is EventKind.WORKER]
        assert [e.status for e in workers] == [WorkerStatus.JOINED, WorkerStatus.LEFT]
        assert all(isinstance(e.status, WorkerStatus) for e in workers)
        task = [e.status for e in seen if e.id == task_id]
        assert all(isinstance(s, TaskStatus) for s in task)
        assert task == [TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCESS]
        for stats in (from_client, await cluster.control_plane.statistics()):
            assert type(stats) is ClusterStats and type(stats.queued) is QueueStats
            assert stats.workers and all(type(w) is WorkerStats for w in stats.workers)
            assert stats.completed == 1


async def test_the_asyncio_and_blocking_clients_hand_out_records() -> None:
    """The asyncio client's events() and stats(), and the blocking client's stats(),
    give the same records as the trio client."""

    async def app(url: str) -> tuple[list[Any], Any]:
        async with fastworker.open_client(url) as client:
            seen: list[Any] = []

            async def keep_submitting() -> None:  # until the stream (subscribing) sees one
                while True:
                    await client.delay(add, 1, 1)
                    await asyncio.sleep(0.1)

            feeder = asyncio.ensure_future(keep_submitting())
            async with client.events() as stream:
                async for event in stream:
                    seen.append(event)
                    if event.status is TaskStatus.SUCCESS:
                        break
            feeder.cancel()
            return seen, await client.stats()

    def blocking(url: str) -> Any:
        with fastworker.connect(url) as client:
            return client.stats()

    async with fastworker.open_control_plane(
        tasks=TASKS, port=0, discovery=False, local_concurrency=2
    ) as cp:
        with trio.fail_after(60):
            seen, stats = await trio.to_thread.run_sync(
                asyncio.run, app(cp.url), abandon_on_cancel=True
            )
            blocking_stats = await trio.to_thread.run_sync(blocking, cp.url, abandon_on_cancel=True)
    assert seen and all(type(e) is Event and e.kind is EventKind.TASK for e in seen)
    assert all(isinstance(e.status, TaskStatus) for e in seen)
    assert type(stats) is ClusterStats and type(blocking_stats) is ClusterStats
    assert blocking_stats.completed >= stats.completed >= 1
