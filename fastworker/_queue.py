"""Four strict priority queues with aging, so a LOW task never starves forever."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import trio


class Queueable(Protocol):
    """What the queue needs of an item: its priority level and when it was queued."""

    priority: int
    enqueued_at: float


T = TypeVar("T", bound=Queueable)

LEVELS = 4


class PriorityQueues(Generic[T]):
    """Strict priority (0 first) with aging.

    A task that has waited ``aging`` seconds counts as one level more urgent, two levels
    after ``2 * aging``, and so on; among equal effective levels the older task goes
    first, so an aged LOW task eventually overtakes a stream of new CRITICAL ones.
    Only queue heads are compared, so a pop is O(levels). Items for which ``is_live`` is
    false (cancelled while queued) are skipped lazily.
    """

    def __init__(
        self,
        aging: float | None = 60.0,
        is_live: Callable[[T], bool] = lambda item: True,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.aging = aging
        self._is_live = is_live
        self._clock = clock
        self._queues: list[deque[T]] = [deque() for _ in range(LEVELS)]
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def depths(self) -> list[int]:
        """Items per level (including not yet skipped dead ones)."""
        return [len(q) for q in self._queues]

    def push(self, item: T) -> None:
        """Queue at the tail of its level."""
        self._queues[item.priority].append(item)
        self._live += 1

    def push_front(self, item: T) -> None:
        """Queue at the head of its level (redelivery after a lost worker)."""
        self._queues[item.priority].appendleft(item)
        self._live += 1

    def discard(self) -> None:
        """Account for one queued item that died (it is skipped when reached)."""
        self._live -= 1

    def peek(self, now: float | None = None) -> tuple[tuple[int, float, int], int] | None:
        """The sort key and level of the most urgent live item, or None (nothing popped).

        Keys compare across queues: (effective level, enqueued_at, level). ``now`` saves
        a clock read when the caller has one.
        """
        aging = self.aging
        is_live = self._is_live
        best_key: tuple[int, float, int] | None = None
        best_level = -1
        for level, q in enumerate(self._queues):
            if not q:
                continue
            while q and not is_live(q[0]):
                q.popleft()
            if not q:
                continue
            at = q[0].enqueued_at
            if not aging:
                return (level, at, level), level
            if now is None:
                now = self._clock()
            effective = level - int((now - at) / aging)
            if effective < 0:
                effective = 0
            key = (effective, at, level)
            if best_key is None or key < best_key:
                best_key, best_level = key, level
        return None if best_key is None else (best_key, best_level)

    def pop_level(self, level: int) -> T:
        """Take the head of ``level`` (after ``peek`` named it)."""
        self._live -= 1
        return self._queues[level].popleft()

    def take_where(self, predicate: Callable[[T], bool]) -> list[list[T]]:
        """Remove and return the live items matching ``predicate``, per level, in order."""
        taken: list[list[T]] = []
        is_live = self._is_live
        for level, q in enumerate(self._queues):
            keep: deque[T] = deque()
            out: list[T] = []
            for item in q:
                if not is_live(item):
                    continue
                (out if predicate(item) else keep).append(item)
            self._queues[level] = keep
            taken.append(out)
        self._live = sum(len(q) for q in self._queues)
        return taken

    def merge(self, levels: list[list[T]]) -> None:
        """Add items (per level, each list in queue order), keeping every level by age."""
        for level, items in enumerate(levels):
            if not items:
                continue
            q = self._queues[level]
            if q:
                merged = sorted([*q, *items], key=lambda item: item.enqueued_at)
                self._queues[level] = deque(merged)
            else:
                q.extend(items)
            self._live += len(items)

    def pop(self, now: float | None = None) -> T | None:
        """The most urgent live item, or None (``now`` saves a clock read)."""
        queues = self._queues
        is_live = self._is_live
        for q in queues:
            while q and not is_live(q[0]):
                q.popleft()
        best: deque[T] | None = None
        if self.aging:
            if now is None:
                now = self._clock()
            best_key: tuple[int, float, int] | None = None
            for level, q in enumerate(queues):
                if not q:
                    continue
                head = q[0]
                effective = max(0, level - int((now - head.enqueued_at) / self.aging))
                key = (effective, head.enqueued_at, level)
                if best_key is None or key < best_key:
                    best_key, best = key, q
        else:
            for q in queues:
                if q:
                    best = q
                    break
        if best is None:
            return None
        self._live -= 1
        return best.popleft()
