"""The task model users see: priorities, statuses, results and error details."""

from __future__ import annotations

import enum
from typing import Any

import attrs


class Priority(enum.IntEnum):
    """Dispatch order: CRITICAL before HIGH before NORMAL before LOW (with aging)."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3

    @classmethod
    def parse(cls, value: Priority | str | int) -> Priority:
        """Accept a Priority, its name in any case ("high"), or its number."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        names = ", ".join(p.name.lower() for p in cls)
        raise ValueError(f"unknown priority {value!r}: use one of {names}")


class TaskStatus(enum.StrEnum):
    """Where a task is in its life; the last three are terminal.

    A str enum: ``TaskStatus.SUCCESS == "success"``, and ``str()`` gives the value.
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """True for success, failure and cancelled."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE, TaskStatus.CANCELLED})


@attrs.frozen
class ErrorInfo:
    """Why a task failed: the exception's type name, its message and the traceback text."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@attrs.frozen
class TaskResult:
    """The outcome of a task.

    ``value`` is the return value (success only); ``error`` says why it failed or was
    cancelled; times are wall-clock POSIX timestamps; ``attempts`` counts runs started;
    ``worker`` names the node (or "local") that ran the last attempt.
    """

    task_id: str
    status: TaskStatus
    value: Any = None
    error: ErrorInfo | None = None
    started_at: float | None = None
    completed_at: float | None = None
    attempts: int = 0
    worker: str | None = None
    name: str = ""

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status is TaskStatus.SUCCESS
