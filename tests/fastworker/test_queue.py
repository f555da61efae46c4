"""Unit tests for fastworker._queue.PriorityQueues: strict priority, FIFO, aging, lazy removal."""

from __future__ import annotations

import attrs

from fastworker import Priority
from fastworker._queue import PriorityQueues


@attrs.define
class Item:
    """A queueable item: a name, its priority level and when it was queued."""

    name: str
    priority: int
    enqueued_at: float = 0.0
    live: bool = True


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drain(queue: PriorityQueues[Item]) -> list[str]:
    """Pop until empty; the names in pop order."""
    names = []
    while (item := queue.pop()) is not None:
        names.append(item.name)
    return names


def make(aging: float | None = None) -> tuple[PriorityQueues[Item], FakeClock]:
    """A queue with a fake clock; items count as live while ``item.live``."""
    clock = FakeClock()
    return PriorityQueues(aging, is_live=lambda item: item.live, clock=clock), clock


def test_strict_priority_then_fifo_within_a_level() -> None:
    """CRITICAL pops before HIGH before NORMAL before LOW; equal levels pop in push order."""
    queue, _ = make(aging=None)
    pushes = [
        ("low1", Priority.LOW),
        ("normal1", Priority.NORMAL),
        ("critical1", Priority.CRITICAL),
        ("high1", Priority.HIGH),
        ("low2", Priority.LOW),
        ("critical2", Priority.CRITICAL),
        ("normal2", Priority.NORMAL),
    ]
    for name, level in pushes:
        queue.push(Item(name, int(level)))
    assert len(queue) == 7
    assert queue.depths() == [2, 1, 2, 2]
    assert drain(queue) == ["critical1", "critical2", "high1", "normal1", "normal2", "low1", "low2"]
    assert len(queue) == 0
    assert queue.pop() is None


def test_aging_lets_an_old_low_item_overtake_new_critical_ones() -> None:
    """A LOW item waiting 3 aging periods counts as CRITICAL and, being older, goes first."""
    queue, clock = make(aging=10.0)
    queue.push(Item("old-low", int(Priority.LOW), enqueued_at=0.0))
    clock.now = 30.0
    queue.push(Item("new-critical-1", int(Priority.CRITICAL), enqueued_at=30.0))
    queue.push(Item("new-critical-2", int(Priority.CRITICAL), enqueued_at=30.0))
    assert drain(queue) == ["old-low", "new-critical-1", "new-critical-2"]


def test_partial_aging_raises_a_level_but_does_not_jump_past_critical() -> None:
    """A LOW item aged 2 periods is HIGH-equivalent: after CRITICAL, before HIGH/NORMAL."""
    queue, clock = make(aging=10.0)
    queue.push(Item("old-low", int(Priority.LOW), enqueued_at=0.0))
    clock.now = 25.0
    queue.push(Item("critical", int(Priority.CRITICAL), enqueued_at=25.0))
    queue.push(Item("high", int(Priority.HIGH), enqueued_at=25.0))
    queue.push(Item("normal", int(Priority.NORMAL), enqueued_at=25.0))
    assert drain(queue) == ["critical", "old-low", "high", "normal"]


def test_without_aging_low_waits_behind_every_critical() -> None:
    """With aging off, age does not matter: strict priority only."""
    queue, clock = make(aging=None)
    queue.push(Item("old-low", int(Priority.LOW), enqueued_at=0.0))
    clock.now = 10_000.0
    queue.push(Item("critical", int(Priority.CRITICAL), enqueued_at=10_000.0))
    assert drain(queue) == ["critical", "old-low"]


def test_young_items_are_not_aged() -> None:
    """Items younger than one aging period keep their own level."""
    queue, clock = make(aging=60.0)
    queue.push(Item("low", int(Priority.LOW), enqueued_at=0.0))
    clock.now = 59.0
    queue.push(Item("normal", int(Priority.NORMAL), enqueued_at=59.0))
    assert drain(queue) == ["normal", "low"]


def test_push_front_goes_to_the_head_of_its_level_only() -> None:
    """A redelivered item (push_front) is first within its level, still after higher levels."""
    queue, _ = make(aging=None)
    queue.push(Item("normal1", int(Priority.NORMAL)))
    queue.push(Item("high", int(Priority.HIGH)))
    queue.push_front(Item("redelivered", int(Priority.NORMAL)))
    assert drain(queue) == ["high", "redelivered", "normal1"]


def test_dead_items_are_skipped_and_discard_keeps_the_count_right() -> None:
    """An item that dies while queued (cancelled) is never popped; len() follows discard()."""
    queue, _ = make(aging=None)
    items = [Item(f"t{i}", int(Priority.NORMAL)) for i in range(4)]
    for item in items:
        queue.push(item)
    items[0].live = False
    queue.discard()
    items[2].live = False
    queue.discard()
    assert len(queue) == 2
    assert drain(queue) == ["t1", "t3"]
    assert len(queue) == 0


def test_dead_head_does_not_hide_a_live_item_of_a_lower_level() -> None:
    """A dead CRITICAL head is dropped and the next live item (LOW) is returned."""
    queue, _ = make(aging=None)
    dead = Item("dead", int(Priority.CRITICAL))
    queue.push(dead)
    queue.push(Item("low", int(Priority.LOW)))
    dead.live = False
    queue.discard()
    assert queue.pop() == Item("low", int(Priority.LOW))
    assert queue.pop() is None
