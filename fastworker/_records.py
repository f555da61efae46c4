"""The records users get from ``events()`` and ``stats()``, and the one place wire
messages become them.

The control plane sends events and statistics as wire messages (``WireEvent``,
``WireClusterStats`` ... in ``_messages``): plain strings, so peers of different
versions understand each other. Users get these frozen records instead, with typed
enums. The enums are ``StrEnum``: ``event.status == "success"`` and
``event.kind == "task"`` hold, ``str()``/f-strings/JSON give the bare value, so code and
output written against the strings are unchanged.

A control plane newer than this client may send a kind or status this version does not
know. ``event_from_wire`` never fails on one: the record keeps the string as it came
(a plain ``str``, not an enum member), so nothing is lost and nothing crashes; code
that needs the enum tests ``isinstance(event.status, TaskStatus)``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from ._messages import WireClusterStats, WireEvent
from ._model import TaskStatus


class EventKind(enum.StrEnum):
    """What an Event is about."""

    TASK = "task"
    """A task (or a workflow) changed status; ``Event.status`` is a TaskStatus."""
    WORKER = "worker"
    """A worker joined or left; ``Event.status`` is a WorkerStatus."""


class WorkerStatus(enum.StrEnum):
    """What happened to a worker (the status of an ``EventKind.WORKER`` event)."""

    JOINED = "joined"
    """It registered with the control plane and gets work from now on."""
    LEFT = "left"
    """It disconnected or was lost (its tasks in flight are redelivered or failed)."""


@attrs.frozen
class Event:
    """A task or worker event, as ``Client.events()`` yields it."""

    kind: EventKind | str
    """TASK or WORKER (a plain str only if a newer control plane sent another kind)."""
    id: str
    """The task's (or workflow's) id; for a worker event, the worker's id."""
    status: TaskStatus | WorkerStatus | str
    """The new status: a TaskStatus for a task event, a WorkerStatus for a worker event
    (a plain str only if a newer control plane sent a status this version does not
    know)."""
    name: str = ""
    """The task name (a workflow's kind for a workflow); empty for a worker event."""
    worker: str | None = None
    """The worker that runs (or ran) the task ("local" for the control plane), if any."""
    at: float = 0.0
    """When it happened: the control plane's wall clock, POSIX seconds."""
    detail: str = ""
    """Why, when there is more to say (e.g. "waiting for a worker that has add")."""


@attrs.frozen
class QueueStats:
    """Queued tasks by priority."""

    critical: int
    """Queued CRITICAL tasks."""
    high: int
    """Queued HIGH tasks."""
    normal: int
    """Queued NORMAL tasks."""
    low: int
    """Queued LOW tasks."""

    @property
    def total(self) -> int:
        """Queued tasks of every priority."""
        return self.critical + self.high + self.normal + self.low


@attrs.frozen
class WorkerStats:
    """One worker's slots and progress."""

    id: str
    """The worker's id ("local" for the control plane's own executor)."""
    slots: int
    """Tasks it runs at once at most (its concurrency)."""
    free: int
    """Slots the control plane may still fill (its credits)."""
    running: int
    """Attempts it runs now."""
    completed: int
    """Attempts it finished since it joined."""


@attrs.frozen
class ClusterStats:
    """A snapshot of the control plane (``Client.stats()``, ``fastworker top``)."""

    queued: QueueStats
    """Tasks waiting for a slot, by priority."""
    scheduled: int
    """Tasks waiting for their time (countdown, ETA, retry backoff, schedules)."""
    running: int
    """Attempts running now, on every worker."""
    workers: list[WorkerStats]
    """The connected workers (and the local executor, if it runs tasks)."""
    submitted: int
    """Tasks accepted since the control plane started."""
    completed: int
    """Tasks that ended ``success``."""
    failed: int
    """Tasks that ended otherwise (``failure`` or ``cancelled``)."""
    retried: int
    """Attempts retried after an error."""
    redelivered: int
    """Attempts sent again because their worker was lost."""
    results_cached: int
    """Terminal results held in the result cache."""
    draining: bool
    """True while the control plane drains (takes no new work)."""
    waiting: dict[str, int] = attrs.field(factory=dict)
    """Queued tasks no connected worker can run, by task name."""
    suspects: int = 0
    """Tasks waiting to be redelivered alone (they were in flight on a lost worker)."""
    quarantined: int = 0
    """Tasks failed with WorkerLost because they kept taking down their workers."""


_KINDS: dict[str, EventKind] = {k.value: k for k in EventKind}
_STATUSES: dict[EventKind, dict[str, TaskStatus | WorkerStatus]] = {
    EventKind.TASK: {s.value: s for s in TaskStatus},
    EventKind.WORKER: {s.value: s for s in WorkerStatus},
}


def event_from_wire(wire: WireEvent) -> Event:
    """The Event record of a wire event; a kind or status this version does not know
    stays the plain string it came as (see the module's docstring)."""
    kind = _KINDS.get(wire.kind)
    if kind is None:
        return Event(wire.kind, wire.id, wire.status, wire.name, wire.worker, wire.at, wire.detail)
    status = _STATUSES[kind].get(wire.status, wire.status)
    return Event(kind, wire.id, status, wire.name, wire.worker, wire.at, wire.detail)


def events_from_wire(wires: Iterable[WireEvent]) -> list[Event]:
    """``event_from_wire`` of each, in order."""
    return [event_from_wire(w) for w in wires]


def stats_from_wire(wire: WireClusterStats) -> ClusterStats:
    """The ClusterStats record of a wire snapshot (same fields, same order)."""
    q = wire.queued
    return ClusterStats(
        queued=QueueStats(q.critical, q.high, q.normal, q.low),
        scheduled=wire.scheduled,
        running=wire.running,
        workers=[WorkerStats(w.id, w.slots, w.free, w.running, w.completed) for w in wire.workers],
        submitted=wire.submitted,
        completed=wire.completed,
        failed=wire.failed,
        retried=wire.retried,
        redelivered=wire.redelivered,
        results_cached=wire.results_cached,
        draining=wire.draining,
        waiting=dict(wire.waiting),
        suspects=wire.suspects,
        quarantined=wire.quarantined,
    )
