"""The control plane's pure parts, tested directly (no actor, no trio).

The unique-key table, the pending cancels, the recent ids, the event feed, the journal
notes, and the actor's handler table (the worker pool: test_worker_pool.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from support.fakes import Keyed as Sub
from support.fakes import SettableClock as Clock

from actors import MailboxFull
from fastworker._control_plane import ControlPlane, TaskRecord
from fastworker._control_plane._events import EVENTS_PER_MESSAGE, EventFeed
from fastworker._control_plane._journaling import JournalNotes
from fastworker._control_plane._tables import PendingCancels, RecentIds, UniqueKeys
from fastworker._messages import Events, Outcome, TaskInfo
from fastworker._model import TaskStatus
from fastworker._protocol import Announce, Lost, Record


class Reply:
    """Records what a waiting cancel was answered."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def resolve(self, value: Any) -> None:
        self.values.append(value)


def never_live(task_id: str) -> bool:
    return False


def test_a_held_key_maps_later_submissions_to_its_task() -> None:
    """A key held by a live task answers its id; a new submission with it is left out."""
    keys = UniqueKeys(Clock(), ttl=60.0, capacity=10)
    keys.hold("a", "k")
    fresh, ids = keys.dedupe([Sub("b", "k"), Sub("c")], [Sub("b", "k"), Sub("c")], never_live)
    assert [s.id for s in fresh] == ["c"]
    assert ids == ["a", "c"]


def test_two_new_submissions_with_one_key_keep_the_first() -> None:
    """Within one group the first submission claims the key; the second maps to it."""
    keys = UniqueKeys(Clock(), ttl=60.0, capacity=10)
    group = [Sub("a", "k"), Sub("b", "k")]
    fresh, ids = keys.dedupe(group, group, never_live)
    assert [s.id for s in fresh] == ["a"]
    assert ids == ["a", "a"]


def test_a_released_key_answers_for_its_ttl_then_is_free() -> None:
    """After its task ends, a key maps to it for ``ttl`` seconds, then frees."""
    clock = Clock()
    keys = UniqueKeys(clock, ttl=60.0, capacity=10)
    keys.hold("a", "k")
    keys.release("a")
    assert keys.key_of == {}
    clock.t += 59.0
    assert keys.holder("k", never_live) == "a"
    clock.t += 2.0
    assert keys.holder("k", never_live) is None
    assert len(keys) == 0


def test_finished_keys_beyond_capacity_forget_the_oldest() -> None:
    """At most ``capacity`` finished keys are kept; the oldest goes first."""
    keys = UniqueKeys(Clock(), ttl=60.0, capacity=2)
    for i in range(3):
        keys.hold(f"t{i}", f"k{i}")
        keys.release(f"t{i}")
    assert keys.holder("k0", never_live) is None
    assert keys.holder("k1", never_live) == "t1"
    assert keys.holder("k2", never_live) == "t2"


def test_a_refused_task_leaves_no_key_behind() -> None:
    """``forget`` (the journal refused the task) frees the key at once."""
    keys = UniqueKeys(Clock(), ttl=60.0, capacity=10)
    keys.hold("a", "k")
    keys.forget("a")
    assert keys.holder("k", never_live) is None
    assert keys.key_of == {}


def test_the_first_cancel_asks_the_worker_and_every_reply_hears_the_end() -> None:
    """Only the first cancel asks the worker; each waiting reply gets the final answer."""
    cancels = PendingCancels()
    first, second = Reply(), Reply()
    assert cancels.begin("a", first) is True
    assert cancels.begin("a", second) is False
    assert cancels.begin("a", None) is False  # a quiet cancel adds no reply
    assert "a" in cancels
    cancels.end("a", cancelled=True)
    assert first.values == [True] and second.values == [True]
    assert "a" not in cancels and len(cancels) == 0


def test_a_task_that_finished_first_answers_false() -> None:
    """A cancel waiting on a task that ended otherwise hears False; others are untouched."""
    cancels = PendingCancels()
    reply, other = Reply(), Reply()
    cancels.begin("a", reply)
    cancels.begin("b", other)
    cancels.end("a", cancelled=False)
    cancels.end("zzz", cancelled=True)  # nothing pending: nothing happens
    assert reply.values == [False]
    assert other.values == [] and "b" in cancels


def test_recent_ids_keep_the_newest_up_to_the_limit() -> None:
    """``add`` and ``add_all`` keep at most ``limit`` ids, forgetting the oldest."""
    recent = RecentIds(3)
    recent.add_all(["a", "b", "c", "d"])
    assert list(recent) == ["b", "c", "d"]
    recent.add("e")
    assert list(recent) == ["c", "d", "e"]
    assert "e" in recent and "a" not in recent


class Subscriber:
    """An event subscriber: keeps what it is told, or fails as told to."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.told: list[Events] = []

    def tell_nowait(self, message: Events) -> None:
        if self.fail is not None:
            raise self.fail
        self.told.append(message)


def test_the_feed_gathers_nothing_without_subscribers() -> None:
    """No subscriber: transitions leave nothing behind, and flush sends nothing."""
    feed = EventFeed(Clock())
    rec = TaskRecord("a", "t", b"", 2, TaskInfo("t"), 0.0)
    feed.task_changed(rec)
    feed.worker_changed("w", "joined")
    assert feed.pending == []


def test_the_feed_sends_each_transition_to_each_subscriber_once_per_flush() -> None:
    """Events gathered in a batch go out together, in order, with the clock's time."""
    feed = EventFeed(Clock())
    one, two = Subscriber(), Subscriber()
    feed.subscribe(one)
    feed.subscribe(one)  # once, however often asked
    feed.subscribe(two)
    rec = TaskRecord("a", "t", b"", 2, TaskInfo("t"), 0.0)
    rec.status = TaskStatus.QUEUED
    feed.task_changed(rec, "waiting for a worker that has t")
    feed.task_ended("a", "success", "t", "w")
    feed.worker_changed("w", "left")
    feed.flush()
    feed.flush()  # nothing new: nothing sent
    assert len(one.told) == 1 and one.told == two.told
    events = one.told[0].events
    assert [(e.kind, e.id, e.status) for e in events] == [
        ("task", "a", "queued"),
        ("task", "a", "success"),
        ("worker", "w", "left"),
    ]
    assert events[0].detail == "waiting for a worker that has t"
    assert events[1].worker == "w" and all(e.at == 1000.0 for e in events)


def test_a_big_batch_is_split_and_a_failing_subscriber_dropped() -> None:
    """Over EVENTS_PER_MESSAGE events go in several messages; a broken ref is dropped,
    a full one only loses this batch."""
    feed = EventFeed(Clock())
    good, full, broken = Subscriber(), Subscriber(MailboxFull("full")), Subscriber(OSError())
    for ref in (good, full, broken):
        feed.subscribe(ref)
    for i in range(EVENTS_PER_MESSAGE + 1):
        feed.task_ended(str(i), "success", "t", None)
    feed.flush()
    assert [len(m.events) for m in good.told] == [EVENTS_PER_MESSAGE, 1]
    assert feed.subscribers == [good, full]
    feed.unsubscribe(full)
    assert feed.subscribers == [good]


class Journal:
    """A stand-in journal ref: keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell_nowait(self, message: Any) -> None:
        self.told.append(message)


def test_journal_notes_tell_the_journal_only_what_there_is() -> None:
    """With a journal, each non-empty note is one message; empty notes send nothing."""
    journal = Journal()
    notes = JournalNotes(journal)
    outcome = Outcome(id="a", status="success", attempt=1)
    notes.announced([TaskInfo("t")])
    notes.finished([outcome])
    notes.lost([("a", 1, 1)])
    notes.announced([])
    notes.finished([])
    notes.lost([])
    assert journal.told == [Announce([TaskInfo("t")]), Record([outcome]), Lost([("a", 1, 1)])]


def test_without_a_journal_the_notes_are_no_ops() -> None:
    """No journal ref: notes do nothing (the parts need not check for a journal)."""
    notes = JournalNotes()
    notes.announced([TaskInfo("t")])
    notes.finished([Outcome(id="a", status="success", attempt=1)])
    notes.lost([("a", 1, 1)])
    assert notes.ref is None


def test_every_in_process_message_has_a_handler() -> None:
    """The handler table covers each message the control plane is told; others raise."""
    import fastworker._control_plane as cp

    handled = {
        cp.Abandon, cp.Accept, cp.BeginDrain, cp.CancelDeadline, cp.CancelTask,
        cp.EventSubscription, cp.GetClusterStats, cp.RateWake, cp.Restore, cp.StatusOf,
        cp.TaskDetail, cp.WaitIdle, cp.WatchIds, cp.WorkerCompleted, cp.WorkerJoined,
        cp.WorkerLeft, cp.WorkerRetiring,
    }  # fmt: skip
    assert handled <= set(ControlPlane.handlers)
    assert all(callable(h) for h in ControlPlane.handlers.values())


async def test_an_unknown_message_is_a_type_error() -> None:
    """``receive`` names the message type it does not handle."""
    plane = ControlPlane.__new__(ControlPlane)
    with pytest.raises(TypeError, match="does not handle Keyed"):
        await plane.receive(None, Sub("x"))  # type: ignore[arg-type]
