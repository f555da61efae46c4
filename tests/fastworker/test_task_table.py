"""The control plane's task table, tested directly (no actor, no trio).

What admission keeps beside the records: ids taken before (a resubmission runs nothing
twice), unique keys, the queue's bound, tasks waiting for their journal commit, and
one periodic run per name.
"""

from __future__ import annotations

import pytest
from support.fakes import Keyed as Sub
from support.fakes import SettableClock as Clock

from fastworker._control_plane import TaskRecord, TaskTable
from fastworker._errors import QueueFull
from fastworker._messages import TaskInfo
from fastworker._model import TaskStatus


def record(task_id: str, name: str = "t", periodic: bool = False) -> TaskRecord:
    """A fresh (pending) record."""
    rec = TaskRecord(task_id, name, b"", 2, TaskInfo(name), 0.0)
    rec.periodic = periodic
    return rec


def test_ids_in_the_table_or_finished_lately_are_not_taken_again() -> None:
    """``fresh`` leaves out ids accepted or finished; an id forgotten past ``recent`` is new."""
    table = TaskTable(Clock(), recent=1)
    table.add(record("a"))
    table.add(record("b"))
    table.end(table["b"])
    assert [s.id for s in table.fresh([Sub("a"), Sub("b"), Sub("c")])] == ["c"]
    assert table.known("a") and table.known("b") and not table.known("c")
    table.add(record("c"))
    table.end(table["c"])  # remembers one id: "b" is forgotten
    assert [s.id for s in table.fresh([Sub("b"), Sub("c")])] == ["b"]


def test_a_group_over_the_bound_is_refused_whole() -> None:
    """``check_room`` counts waiting and running tasks against ``max_queue``."""
    table = TaskTable(Clock(), max_queue=3)
    table.add(record("a"))
    table.check_room(2)
    with pytest.raises(QueueFull, match="raise max_queue"):
        table.check_room(3)


def test_unique_keys_map_new_submissions_to_the_holder_until_the_ttl_passes() -> None:
    """A held key maps a later submission to its task, while live and ``result_ttl`` after."""
    clock = Clock()
    table = TaskTable(clock, result_ttl=60.0)
    assert table.dedupe([Sub("x")], [Sub("x")]) == ([Sub("x")], None)  # no keys: no mapping
    table.add(record("a"), "k")
    new, ids = table.dedupe([Sub("b", "k"), Sub("c")], [Sub("b", "k"), Sub("c")])
    assert [s.id for s in new] == ["c"] and ids == ["a", "c"]
    table.end(table["a"])
    clock.t += 59.0
    assert table.dedupe([Sub("d", "k")], [Sub("d", "k")])[1] == ["a"]
    clock.t += 2.0
    assert table.dedupe([Sub("e", "k")], [Sub("e", "k")])[1] == ["e"]


def test_a_refused_task_leaves_no_trace() -> None:
    """The journal could not record it: its record, key and wait are gone; no id remembered."""
    table = TaskTable(Clock())
    table.add(record("a"), "k")
    table.await_durable("a", None)
    assert table.refuse("a") is not None
    assert "a" not in table and not table.known("a") and table.awaiting == {}
    assert table.dedupe([Sub("b", "k")], [Sub("b", "k")])[1] == ["b"]
    assert table.refuse("a") is None  # once


def test_only_a_pending_task_waiting_for_its_commit_is_made_durable_or_refused() -> None:
    """``durable`` answers the record and when it runs, once; a task cancelled meanwhile
    (no longer pending) is neither queued nor refused."""
    table = TaskTable(Clock())
    table.add(record("a"))
    table.add(record("b"))
    table.add(record("c"))
    table.await_durable("a", 5.0)
    table.await_durable("b", None)
    table["b"].status = TaskStatus.CANCELLED
    assert table.durable("a") == (table["a"], 5.0)
    assert table.durable("a") is None
    assert table.durable("b") is None and table.refuse("b") is None
    assert table.durable("c") is None and table.refuse("c") is None  # never waited
    assert "b" in table and "c" in table


def test_one_periodic_run_per_name_while_it_is_in_the_table() -> None:
    """A periodic run is its name's current until it ends; an older run's end changes nothing."""
    table = TaskTable(Clock())
    first = record("p@1", "p", periodic=True)
    table.add(first)
    assert table.periodic_running("p") == "p@1"
    second = record("p@2", "p", periodic=True)
    table.add(second)
    table.end(first)
    assert table.periodic_running("p") == "p@2"
    table.end(second)
    assert table.periodic_running("p") is None and table.periodic == {}


def test_ids_come_back_in_the_order_their_tasks_were_accepted() -> None:
    """``in_accept_order`` orders known ids by acceptance and drops unknown ones."""
    table = TaskTable(Clock())
    for task_id in ["a", "b", "c"]:
        table.add(record(task_id))
    assert table.in_accept_order({"c", "zzz", "a"}) == ["a", "c"]
    assert table.in_accept_order(set()) == []
