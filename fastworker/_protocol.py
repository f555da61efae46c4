"""The in-process protocol: every message the server's actors tell each other.

Wire messages (what crosses a link) live in ``_messages``; these never leave the
process. They are grouped by the actor that handles them, so a reader following a
task sees what each actor is asked. The actors' modules re-export their own.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors import ActorRef, Reply

from ._messages import Outcome, RunTasks, Submission, SubmitFlow, TaskInfo

# -- to the control plane (ControlPlane) -----------------------------------------------


@attrs.frozen
class Accept:
    """Accept groups of submissions; each group is all or nothing and answers its Reply.

    A group's reply gets the number of tasks accepted, or QueueFull / ShuttingDown. A
    group's watcher (if any) is subscribed to the outcome of each of its tasks.
    """

    groups: list[tuple[list[Submission], Reply | None, ActorRef | None]]


@attrs.frozen
class Restore:
    """Tasks replayed from the journal at start: queue or schedule them again.

    ``done`` are ids the journal has results for: a client resubmitting one after the
    restart (its acknowledgement was lost in the crash) must not run it again.
    """

    tasks: list[JournaledTask]
    done: list[str] = attrs.field(factory=list)
    known: list[TaskInfo] = attrs.field(factory=list)
    """Task names workers announced before the restart (the journal's catalogue)."""


@attrs.frozen
class WatchIds:
    """Push these tasks' outcomes to ``ref``; ids not known anywhere get Unknown."""

    ids: list[str]
    ref: ActorRef


@attrs.frozen
class StatusOf:
    """Answer the status value of a non-terminal task, or None."""

    id: str


@attrs.frozen
class TaskDetail:
    """Answer what is known of a non-terminal task (read-only), or None.

    The answer is a dict: ``name``, ``status``, ``priority``, ``attempts``, ``worker``,
    ``payload`` (the packed arguments).
    """

    id: str


@attrs.frozen
class CancelTask:
    """Cancel a task; answers True if it was not terminal.

    With ``reply`` (a client's pending request) the answer goes there and the sender
    does not wait: a cancel that waits for a running task to confirm never holds up
    the sender's other requests.
    """

    id: str
    reply: Reply | None = None


@attrs.frozen
class CancelDeadline:
    """The bounded wait for a worker to confirm a cancel is over."""

    id: str
    attempt: int


@attrs.frozen
class WorkerJoined:
    """A worker with ``slots`` slots (``busy`` of them already taken) can take work.

    ``tasks`` are the names it has (None: every task), ``queues`` the queues it serves
    (None: all), ``infos`` the options of its tasks (for names the registry lacks).
    """

    id: str
    ref: ActorRef
    slots: int
    busy: int = 0
    local: bool = False
    tasks: list[str] | None = None
    queues: list[str] | None = None
    infos: list[TaskInfo] = attrs.field(factory=list)
    prefetch: int = 0
    runs_to: ActorRef | None = None
    """Where RunTasks go, if not ``ref``: the worker's executor itself (one hop less)."""


@attrs.frozen
class RateWake:
    """A rate-limited task may start again: dispatch."""


@attrs.frozen
class WorkerRetiring:
    """A worker is draining: dispatch nothing more to it."""

    id: str


@attrs.frozen
class WorkerLeft:
    """A worker is gone; ``running`` are the (id, attempt) it had in flight."""

    id: str
    running: list[tuple[str, int]]
    reason: str = ""


@attrs.frozen
class WorkerCompleted:
    """Outcomes from a worker and the slots it freed; ``returned`` (id, attempt) unstarted."""

    id: str
    outcomes: list[Outcome]
    credits: int
    returned: list[tuple[str, int]] = attrs.field(factory=list)


@attrs.frozen
class EventSubscription:
    """Start or stop pushing Events to ``ref``."""

    ref: ActorRef
    enabled: bool


@attrs.frozen
class GetClusterStats:
    """Answer ClusterStats (the cache figure comes from ``results_cached``)."""

    results_cached: int = 0


@attrs.frozen
class BeginDrain:
    """Refuse new work and stop dispatching; answer how many tasks are still running."""


@attrs.frozen
class WaitIdle:
    """Answer once no task is running (the caller owns the timeout)."""


@attrs.frozen
class Abandon:
    """A drain ran out of time: end every unfinished task now, saying why.

    Without a journal, running tasks fail with WorkerLost and waiting ones with
    ShuttingDown, so clients waiting on them hear it; with a journal they stay on disk for
    the next start. Answers (running, waiting) counts.
    """

    reason: str


# -- to the control plane's workflows --------------------------------------------------


@attrs.frozen
class AcceptFlow:
    """Accept a workflow; ``reply`` answers when accepted (durable with a journal)."""

    flow: SubmitFlow
    reply: Reply | None
    watcher: ActorRef | None


@attrs.frozen
class JournaledFlow:
    """A workflow replayed from the journal: its nodes and what its members left.

    ``results`` are the recorded terminal outcomes of its members; ``tasks`` are its
    members that were accepted and not finished (they run again, like any task).
    """

    id: str
    nodes: bytes
    results: list[Outcome] = attrs.field(factory=list)
    tasks: list[JournaledTask] = attrs.field(factory=list)


@attrs.frozen
class RestoreFlows:
    """Workflows replayed from the journal at start (before serving anyone)."""

    flows: list[JournaledFlow]


# -- to the Scheduler ------------------------------------------------------------------


@attrs.frozen
class ScheduleAt:
    """Tell the control plane ``Due`` for each id at its trio-clock time."""

    items: list[tuple[str, float]]


@attrs.frozen
class Unschedule:
    """Forget these ids (cancelled)."""

    ids: list[str]


@attrs.frozen
class Due:
    """These scheduled tasks are due now."""

    ids: list[str]


@attrs.frozen
class Tick:
    """A periodic task's time has come (``fire_at`` is the wall-clock fire time)."""

    name: str
    fire_at: float


@attrs.frozen
class NextFireTimes:
    """Answer {periodic task name: next wall-clock fire time}."""


# -- to the ResultCache ----------------------------------------------------------------


@attrs.frozen
class Store:
    """Keep these terminal outcomes and wake their waiters."""

    outcomes: list[Outcome]


@attrs.frozen
class Subscribe:
    """Tell ``ref`` a Results message for each id once it has an outcome.

    Ids in ``unknown_if_absent`` with no outcome now are answered with Unknown at once
    (the control plane knows they are not running anywhere).
    """

    ids: list[str]
    ref: ActorRef
    unknown_if_absent: bool = False


@attrs.frozen
class Unsubscribe:
    """Forget every waiter of ``ref`` (its client went away)."""

    ref: ActorRef


@attrs.frozen
class Lookup:
    """Answer the outcome for ``id`` or None."""

    id: str


@attrs.frozen
class Peek:
    """Answer which of ``ids`` have an outcome (no LRU refresh)."""

    ids: list[str]


@attrs.frozen
class GetCacheStatistics:
    """Answer CacheStatistics."""


# -- to the Journal --------------------------------------------------------------------


@attrs.frozen
class JournaledTask:
    """An accepted, unfinished task as recorded."""

    id: str
    name: str
    payload: bytes
    priority: int
    eta: float | None
    attempts: int = 0
    losses: int = 0
    """Workers lost while it was in flight (a running mark found at replay counts too)."""
    unique_key: str | None = None


@attrs.frozen
class Persist:
    """Make these accepted tasks durable, then resolve ``replies`` with their values.

    ``notify`` (the control plane) is told Durable(ids) after the commit, or
    NotDurable(ids, reason) if it failed: the tasks wait for that before they run.
    """

    tasks: list[JournaledTask]
    replies: list[tuple[Reply, Any]]
    notify: ActorRef | None = None
    flows: list[tuple[str, bytes]] = attrs.field(factory=list)  # (workflow id, nodes)


@attrs.frozen
class Record:
    """Record these terminal outcomes (no one waits for it)."""

    outcomes: list[Outcome]


@attrs.frozen
class Started:
    """Mark these tasks running in this process, then hand ``runs`` to ``executor``.

    The mark is durable before the task starts: if the task crashes the process, the
    next start counts it as a worker lost (see JournalFile.load).
    """

    ids: list[str]
    executor: ActorRef
    runs: RunTasks


@attrs.frozen
class Lost:
    """(id, attempts, losses) of tasks that were in flight on a lost worker."""

    losses: list[tuple[str, int, int]]


@attrs.frozen
class Announce:
    """Remember these task names and options (announced by workers) across restarts."""

    infos: list[TaskInfo]


@attrs.frozen
class Sync:
    """Answer once everything told to the journal before this is committed (for a drain)."""


@attrs.frozen
class Durable:
    """To the control plane: these accepted tasks are on disk and may run."""

    ids: list[str]


@attrs.frozen
class NotDurable:
    """To the control plane: the commit of these tasks failed; they were refused."""

    ids: list[str]
    reason: str
