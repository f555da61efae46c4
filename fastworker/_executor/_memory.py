"""What the executor remembers, pure and trio-free: failure-log rate limits and recent successes."""

from __future__ import annotations

from collections import OrderedDict

from .._messages import Outcome

RECENT_ENTRIES = 1024
RECENT_BYTES = 32 * 1024 * 1024
RECENT_TTL = 300.0
"""Successes kept for redelivered attempts: at most this many, bytes, seconds."""

FAILURE_LOG_WINDOW = 60.0
"""Seconds between two full failure tracebacks logged for the same task name."""


class FailureLog:
    """Rate limit for failure logs: one full entry per task name per ``window`` seconds.

    ``admit(name, now)`` answers None (suppress) or how many failures of that name were
    suppressed since the last full entry.
    """

    def __init__(self, window: float = FAILURE_LOG_WINDOW, max_names: int = 10_000) -> None:
        self.window = window
        self.max_names = max_names
        self._last: dict[str, tuple[float, int]] = {}
        self.logged = 0
        self.suppressed = 0

    def admit(self, name: str, now: float) -> int | None:
        """None to suppress this failure, else the count suppressed before it."""
        entry = self._last.get(name)
        if entry is not None and now - entry[0] < self.window:
            self._last[name] = (entry[0], entry[1] + 1)
            self.suppressed += 1
            return None
        if entry is None and len(self._last) >= self.max_names:
            self._last.clear()  # many distinct names: forget, rather than grow
        self._last[name] = (now, 0)
        self.logged += 1
        return entry[1] if entry is not None else 0


class RecentSuccesses:
    """Successful outcomes kept (bounded by count, bytes and age) for redelivered attempts.

    A redelivered attempt of a task that already succeeded here (its report was lost
    with the link) is answered from here instead of running again.
    """

    def __init__(
        self,
        max_entries: int = RECENT_ENTRIES,
        max_bytes: int = RECENT_BYTES,
        ttl: float = RECENT_TTL,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[Outcome, float]] = OrderedDict()
        self.bytes = 0
        """Result bytes held."""

    def __len__(self) -> int:
        return len(self._items)

    def take(self, task_id: str) -> Outcome | None:
        """Remove and return the success remembered for ``task_id``, if any."""
        entry = self._items.pop(task_id, None)
        if entry is None:
            return None
        self.bytes -= len(entry[0].value or b"")
        return entry[0]

    def remember(self, outcome: Outcome, now: float) -> None:
        """Keep ``outcome`` (unless too large), dropping the oldest past the bounds."""
        size = len(outcome.value or b"")
        if size > self.max_bytes // 4:
            return
        items = self._items
        previous = items.pop(outcome.id, None)
        if previous is not None:
            self.bytes -= len(previous[0].value or b"")
        items[outcome.id] = (outcome, now + self.ttl)
        self.bytes += size
        while items:
            task_id, (old, expires) = next(iter(items.items()))
            if len(items) <= self.max_entries and self.bytes <= self.max_bytes and expires > now:
                break
            del items[task_id]
            self.bytes -= len(old.value or b"")
