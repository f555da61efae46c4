"""One task in the dashboard's ring: its entry layout and the read-only view (trio-free).

A ring entry is a plain list (the cheapest object to make and update per task, on the
hot path of every task); a ``TaskSummary`` is a read-only view of one, made only when
someone reads. The entry holds the accepted ``Submission`` (for the arguments) and the
terminal ``Outcome`` (error, times) themselves rather than copies of their fields.
"""

from __future__ import annotations

from typing import Any

from .._messages import Submission, WireError

TERMINAL = frozenset({"success", "failure", "cancelled"})
"""The statuses a task ends in."""

# The fields of an entry, by index.
_SUB, _NAME, _STATUS, _SUBMITTED, _QUEUED, _STARTED, _UPDATED = range(7)
_ATTEMPTS, _WORKER, _OUTCOME, _SIZE, _TOO_BIG = range(7, 12)


def new_entry(sub: Submission | None, name: str, status: str, at: float, size: int) -> list[Any]:
    """A fresh entry: ``sub`` (None: arguments not kept), seen at ``at``, ``size`` bytes."""
    return [sub, name, status, at, None, None, at, 0, None, None, size, 0]


class TaskSummary:
    """What the page shows of one task (a view of its ring entry)."""

    __slots__ = ("_entry", "id")

    def __init__(self, id: str, entry: list[Any]) -> None:
        self.id = id
        self._entry = entry

    name = property(lambda self: self._entry[_NAME], doc="The task name.")
    status = property(lambda self: self._entry[_STATUS], doc="A TaskStatus value.")
    submitted_at = property(lambda self: self._entry[_SUBMITTED], doc="Accepted at (POSIX).")
    started_at = property(lambda self: self._entry[_STARTED], doc="Last attempt started at.")
    updated_at = property(lambda self: self._entry[_UPDATED], doc="Last change at.")
    attempts = property(lambda self: self._entry[_ATTEMPTS], doc="Attempts started.")
    worker = property(lambda self: self._entry[_WORKER], doc="Worker of the last attempt.")
    too_big = property(lambda self: self._entry[_TOO_BIG], doc="Size of arguments not kept.")
    size = property(lambda self: self._entry[_SIZE], doc="Approximate bytes held.")

    @property
    def terminal(self) -> bool:
        """True for success, failure and cancelled."""
        return self._entry[_STATUS] in TERMINAL

    @property
    def payload(self) -> bytes | None:
        """The packed arguments, if kept."""
        sub = self._entry[_SUB]
        return sub.payload if sub is not None else None

    @property
    def priority(self) -> int | None:
        """The priority asked for at submission (None: the task's default)."""
        sub = self._entry[_SUB]
        return sub.priority if sub is not None else None

    @property
    def error(self) -> WireError | None:
        """Why it failed or was cancelled."""
        outcome = self._entry[_OUTCOME]
        return outcome.error if outcome is not None else None

    @property
    def completed_at(self) -> float | None:
        """When it finished (POSIX time)."""
        outcome = self._entry[_OUTCOME]
        return outcome.completed_at if outcome is not None else None
