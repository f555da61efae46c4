"""The event fan-out: an observer of the control plane's transitions (trio-free).

The control plane tells it what changed (a task's status, a worker joining or
leaving); it turns each into an Event only while someone subscribes, and ``flush``
(once per batch of messages) pushes what it gathered to every subscriber. A slow
subscriber loses events, not its feed; one that fails is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors import MailboxFull

from .._messages import Events, WireEvent
from ._records import TaskRecord

log = logging.getLogger("fastworker.control_plane")

EVENTS_PER_MESSAGE = 10_000
"""Events sent in one Events message at most (each message fits a frame)."""


class EventFeed:
    """Gathers the control plane's events while anyone listens; ``flush`` sends them."""

    __slots__ = ("now", "pending", "subscribers")

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.subscribers: list[Any] = []
        """Refs that get Events (empty: nothing is gathered; callers may check it first)."""
        self.pending: list[WireEvent] = []

    def subscribe(self, ref: Any) -> None:
        """Push events to ``ref`` from now on (once, however often asked)."""
        if ref not in self.subscribers:
            self.subscribers.append(ref)

    def unsubscribe(self, ref: Any) -> None:
        """Stop pushing events to ``ref`` (if it was subscribed)."""
        if ref in self.subscribers:
            self.subscribers.remove(ref)

    def task_changed(self, rec: TaskRecord, detail: str = "") -> None:
        """``rec`` has a new status (queued, scheduled, running, retrying ...)."""
        if self.subscribers:
            now = self.now()
            self.pending.append(
                WireEvent("task", rec.id, rec.status.value, rec.name, rec.worker, now, detail)
            )

    def task_ended(self, task_id: str, status: str, name: str, worker: str | None) -> None:
        """A task (or a workflow) reached ``status``, or moved without a record of its own."""
        if self.subscribers:
            self.pending.append(WireEvent("task", task_id, status, name, worker, self.now()))

    def worker_changed(self, worker_id: str, what: str) -> None:
        """A worker ``joined`` or ``left``."""
        if self.subscribers:
            self.pending.append(WireEvent("worker", worker_id, what, at=self.now()))

    def flush(self) -> None:
        """Send what was gathered to every subscriber; drop a subscriber that fails."""
        if not self.pending:
            return
        events, self.pending = self.pending, []
        for ref in list(self.subscribers):
            try:
                for start in range(0, len(events), EVENTS_PER_MESSAGE):
                    ref.tell_nowait(Events(events[start : start + EVENTS_PER_MESSAGE]))
            except MailboxFull as exc:  # a slow follower loses events, not its feed
                log.warning("%d events not sent to %r: %s", len(events), ref, exc)
            except Exception as exc:
                log.warning("event subscriber %r dropped: %s", ref, exc)
                self.subscribers.remove(ref)
