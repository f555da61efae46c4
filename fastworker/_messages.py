"""Messages between the actors of FastWorker (in-process and over links).

Task arguments and results travel as opaque msgpack bytes (``payload``, ``value``):
only the client and the executor pack or unpack them. What users get from events and
statistics are the records of ``_records``, made from the ``Wire*`` messages here.
"""

from __future__ import annotations

import attrs

from actors import message

from ._names import EXECUTOR

# -- records --------------------------------------------------------------------------


@message("fw.Error")
@attrs.frozen
class WireError:
    """An error's type name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""


@message("fw.Submission")
@attrs.frozen
class Submission:
    """One task as the client submits it.

    ``eta`` is a wall-clock POSIX timestamp; ``countdown`` is seconds from when the
    control plane accepts it (measured on the control plane's clock, so client clock
    skew does not matter).
    """

    id: str
    name: str
    payload: bytes
    priority: int | None = None
    eta: float | None = None
    countdown: float | None = None
    unique_key: str | None = None


@message("fw.Run")
@attrs.frozen
class Run:
    """One attempt of a task, sent to an executor.

    ``priority`` orders a subworker's local backlog (prefetched work): 0 (CRITICAL) first.
    """

    id: str
    name: str
    payload: bytes
    attempt: int
    timeout: float | None = None
    priority: int = 2


@message("fw.Outcome")
@attrs.frozen
class Outcome:
    """What an attempt produced (from an executor) or a terminal result (in the cache).

    ``status`` is a TaskStatus value; ``value`` is the packed result on success;
    ``retryable`` says the error matched the task's ``retry_on``.
    """

    id: str
    status: str
    attempt: int
    value: bytes | None = None
    error: WireError | None = None
    started_at: float | None = None
    completed_at: float | None = None
    worker: str | None = None
    name: str = ""
    retryable: bool = False


# -- client -> control plane ----------------------------------------------------------


@message("fw.RegisterClient")
@attrs.frozen
class RegisterClient:
    """A client node introduces itself; the answer is its ClientConnection's actor name."""

    node_id: str
    inbox: str


@message("fw.Submit")
@attrs.frozen
class Submit:
    """Accept these tasks (all or nothing). With ``watch`` their results are pushed back."""

    tasks: list[Submission]
    watch: bool = False


@message("fw.Watch")
@attrs.frozen
class Watch:
    """Push these tasks' results to the client when they are terminal."""

    ids: list[str]


@message("fw.GetResult")
@attrs.frozen
class GetResult:
    """Answer the terminal Outcome of a task, or None."""

    id: str


@message("fw.GetStatus")
@attrs.frozen
class GetStatus:
    """Answer a task's status value, or None if unknown or expired."""

    id: str


@message("fw.Cancel")
@attrs.frozen
class Cancel:
    """Cancel a task; answers True if it was not terminal yet."""

    id: str


@message("fw.SubscribeEvents")
@attrs.frozen
class SubscribeEvents:
    """Start (or stop) pushing task and worker events to the client."""

    enabled: bool = True


@message("fw.GetStats")
@attrs.frozen
class GetStats:
    """Answer a WireClusterStats snapshot."""


# -- control plane -> client ----------------------------------------------------------


@message("fw.Results")
@attrs.frozen
class Results:
    """Terminal outcomes pushed to a client that watches them."""

    outcomes: list[Outcome]


@message("fw.Unknown")
@attrs.frozen
class Unknown:
    """Watched ids the control plane does not know (never submitted, or expired)."""

    ids: list[str]


@message("fw.Event")
@attrs.frozen
class WireEvent:
    """A task or worker event on the wire. ``kind`` is "task" or "worker", ``status`` a
    TaskStatus or WorkerStatus value; clients turn it into the public ``Event`` record
    (``_records.event_from_wire``), keeping a value they do not know as it came.
    """

    kind: str
    id: str
    status: str
    name: str = ""
    worker: str | None = None
    at: float = 0.0
    detail: str = ""


@message("fw.Events")
@attrs.frozen
class Events:
    """Events pushed together."""

    events: list[WireEvent]


@message("fw.QueueStats")
@attrs.frozen
class WireQueueStats:
    """Queued tasks by priority name (part of WireClusterStats)."""

    critical: int
    high: int
    normal: int
    low: int


@message("fw.WorkerStats")
@attrs.frozen
class WireWorkerStats:
    """One worker's slots and progress (part of WireClusterStats)."""

    id: str
    slots: int
    free: int
    running: int
    completed: int


@message("fw.ClusterStats")
@attrs.frozen
class WireClusterStats:
    """A snapshot of the control plane on the wire (the answer to GetStats); users get
    the ``ClusterStats`` record (``_records.stats_from_wire``: same fields, same order).
    """

    queued: WireQueueStats
    scheduled: int
    running: int
    workers: list[WireWorkerStats]
    submitted: int
    completed: int
    failed: int
    retried: int
    redelivered: int
    results_cached: int
    draining: bool
    waiting: dict[str, int] = attrs.field(factory=dict)
    """Queued tasks no connected worker can run, by task name."""
    suspects: int = 0
    """Tasks waiting to be redelivered alone (they were in flight on a lost worker)."""
    quarantined: int = 0
    """Tasks failed with WorkerLost because they kept taking down their workers."""


# -- subworker <-> control plane ------------------------------------------------------


@message("fw.TaskInfo")
@attrs.frozen
class TaskInfo:
    """What the control plane needs to know of a task a worker has (its dispatch policy).

    ``rate_limit`` is the ``"N/s"`` text; ``max_concurrency`` None means unlimited.
    """

    name: str
    queue: str = "default"
    priority: int = 2
    retries: int = 0
    retry_backoff: float = 1.0
    retry_backoff_max: float = 600.0
    timeout: float | None = None
    redeliver: bool = True
    max_concurrency: int | None = None
    rate_limit: str | None = None
    max_worker_losses: int | None = None


@message("fw.RegisterWorker")
@attrs.frozen
class RegisterWorker:
    """A subworker introduces itself; the answer is its SubworkerConnection's actor name.

    ``prefetch``: how many attempts beyond its free slots it keeps ready in a local
    backlog (run in priority order), to hide the round trip between two tasks.
    """

    node_id: str
    concurrency: int
    tasks: list[str]
    executor: str = EXECUTOR
    busy: int = 0
    infos: list[TaskInfo] = attrs.field(factory=list)
    """The options of each of ``tasks`` (older subworkers send none: defaults apply)."""
    queues: list[str] | None = None
    """The queues it serves; None: every queue of the tasks it has."""
    prefetch: int = 0


@message("fw.RunTasks")
@attrs.frozen
class RunTasks:
    """Run these attempts.

    Never more than the worker's free slots plus the ``prefetch`` backlog it announced
    (see RegisterWorker).
    """

    runs: list[Run]


@message("fw.Reclaim")
@attrs.frozen
class Reclaim:
    """Give back (unstarted) every backlog attempt less urgent than ``priority``."""

    priority: int


@message("fw.CancelRun")
@attrs.frozen
class CancelRun:
    """Cancel a running attempt."""

    id: str
    attempt: int


@message("fw.Completed")
@attrs.frozen
class Completed:
    """Finished attempts, and how many slots became free (``credits``).

    A sync task that timed out is reported at once but frees its slot only when its
    thread returns, in a later Completed with no outcomes. ``returned`` are attempts the
    worker gives back unstarted (from its prefetch backlog: it is draining, or a more
    urgent task waits for a slot: Reclaim); each counts in ``credits``.
    """

    outcomes: list[Outcome]
    credits: int
    returned: list[Run] = attrs.Factory(list)


@message("fw.Retire")
@attrs.frozen
class Retire:
    """A subworker is draining: send it no more work (answered once the control plane knows)."""


@message("fw.Drain")
@attrs.frozen
class Drain:
    """Stop taking work; answer once running tasks finished (or the caller gives up)."""


# -- workflows (client -> control plane) ------------------------------------------------


@message("fw.SubmitFlow")
@attrs.frozen
class SubmitFlow:
    """Accept a workflow under the id ``id``.

    ``nodes`` is the graph packed compactly (see ``fastworker._workflow_format``: a list of
    nodes, root first; each task member only its name, its own packed arguments and its
    options). Answered once accepted (with a journal, once durable). With ``watch`` its
    result is pushed back like a task's.
    """

    id: str
    nodes: bytes
    watch: bool = False
