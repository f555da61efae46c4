"""Reading the ring: one task, the recent ones filtered, what changed since (trio-free).

``RingQueries`` is the read side of ``RecentTasks`` (``_ring``), over the state that
class keeps: the entries by id in arrival order and the log of the last changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from ._summary import _NAME, _STATUS, TaskSummary


class RingQueries:
    """The read side of the ring (a mixin of ``RecentTasks``)."""

    max_entries: int
    max_bytes: int
    bytes: int
    evicted: int
    _tasks: dict[str, list[Any]]
    changes: deque[str]
    change_count: int

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[TaskSummary]:
        return (TaskSummary(i, e) for i, e in self._tasks.items())

    def get(self, task_id: str) -> TaskSummary | None:
        """The summary of a task, or None if it was never seen or was dropped."""
        entry = self._tasks.get(task_id)
        return TaskSummary(task_id, entry) if entry is not None else None

    def recent(
        self, *, status: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[TaskSummary]:
        """Newest first, filtered by exact status and by name (substring); an empty
        filter matches every task."""
        out: list[TaskSummary] = []
        for task_id, entry in reversed(self._tasks.items()):
            # Inline (no function per entry): the page scans up to the whole ring.
            if status and entry[_STATUS] != status:
                continue
            if name and name not in entry[_NAME]:
                continue
            out.append(TaskSummary(task_id, entry))
            if len(out) >= limit:
                break
        return out

    def changed_since(self, seen: int, limit: int = 100) -> tuple[int, list[TaskSummary]]:
        """Summaries changed after change number ``seen`` (newest first, each once)."""
        fresh = min(self.change_count - seen, len(self.changes))
        out: list[TaskSummary] = []
        ids: set[str] = set()
        recent = list(self.changes)[len(self.changes) - fresh :]
        for task_id in reversed(recent):
            if task_id in ids:
                continue
            ids.add(task_id)
            entry = self._tasks.get(task_id)
            if entry is not None:
                out.append(TaskSummary(task_id, entry))
                if len(out) >= limit:
                    break
        return self.change_count, out

    def statistics(self) -> dict[str, Any]:
        """Entries, bytes and limits."""
        return {
            "entries": len(self._tasks),
            "bytes": self.bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            "evicted": self.evicted,
        }
