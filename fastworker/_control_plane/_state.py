"""The control plane's shared state: the task table, the worker pool, the queue."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import TYPE_CHECKING

import trio

from actors import ActorRef, Context, Reply

from .._clock import WallClock
from .._messages import Outcome, Run, Submission, TaskInfo, WireError
from .._model import TaskStatus
from .._protocol import JournaledTask
from .._registry import Registry, TaskSpec
from .._routing import Routable, Router
from ._events import EventFeed
from ._flows import FlowTable
from ._journaling import JournalNotes
from ._pool import WorkerPool
from ._records import ControlPlaneConfig, Observer, TaskRecord
from ._tables import PendingCancels
from ._task_table import TaskTable

DEFAULT_CONFIG = ControlPlaneConfig()


class ControlPlaneState:
    """The control plane's state and the helpers every part uses (see ``_actor``).

    The parts (admission, dispatch, outcomes, cancellation, workers) are mixins over
    this state; ``ControlPlane`` puts them together with the actor's loop.
    """

    def __init__(
        self,
        registry: Registry,
        cache: ActorRef,
        clock: WallClock,
        config: ControlPlaneConfig = DEFAULT_CONFIG,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.clock = clock
        self.config = config
        self.scheduler: ActorRef | None = None
        self.journal_notes = JournalNotes()
        """What the journal is told as things happen (see ``journal``)."""
        self.observer: Observer | None = None
        """Called after each batch (read-only: the dashboard's recent tasks, metrics)."""
        self._observed: list[Submission] = []
        self._observed_runs: list[tuple[str, list[Run]]] = []
        self._observed_requeued: list[tuple[str, str, str]] = []
        self._to_journal: list[JournaledTask] = []
        self._cancelling = PendingCancels()
        self.tasks = TaskTable(
            clock.now,
            max_queue=config.max_queue,
            result_ttl=config.result_ttl,
            unique_keys=config.unique_keys,
        )
        """Every non-terminal task by id, with the ids finished lately, the unique keys,
        what waits for its journal commit and the periodic runs in flight."""
        self.announced: dict[str, TaskInfo] = {}
        self._infos: dict[str, tuple[TaskSpec, TaskInfo]] = {}
        self.queue: Router[TaskRecord] = Router(
            self._policy,
            config.aging,
            is_live=lambda rec: rec.status is TaskStatus.QUEUED,
            is_running=self._still_running,
            clock=trio.current_time,
        )
        self._wake_at: float | None = None
        self.pool = WorkerPool(config.worker_name)
        """The workers, their credits, suspects alone and prefetch backlogs."""
        self.draining = False
        self._idle_waiters: list[Reply] = []
        self.events = EventFeed(clock.now)
        """The event fan-out: told each transition, it sends Events to subscribers."""
        self._outcomes: list[Outcome] = []
        self._periodic_seq = count(1)
        self._run_time: dict[str, float] = {}
        self._self_ref: ActorRef | None = None
        self._batches: dict[str, list[Run]] = {}
        """The runs of the dispatch pass under way, by worker id (see ``_dispatch``)."""
        self._suspects: list[TaskRecord] = []
        self.submitted = self.completed = self.failed = self.retried = 0
        self.redelivered = self.skipped_ticks = self.quarantined = self.refused = 0
        # -- workflows (see _control_plane_flows) --
        self.flows = FlowTable(self)
        self._ctx: Context | None = None

    @property
    def journal(self) -> ActorRef | None:
        """The Journal actor (None: no journal); set once, before any message."""
        ref: ActorRef | None = self.journal_notes.ref
        return ref

    @journal.setter
    def journal(self, ref: ActorRef | None) -> None:
        self.journal_notes.ref = ref

    def _context(self) -> Context:
        """The context (workflow steps cancel members outside any request)."""
        if self._ctx is None:
            raise RuntimeError("the control plane has not started")
        return self._ctx

    def _policy(self, name: str) -> TaskInfo:
        """A name's options: the registry's, else what a worker announced, else defaults."""
        spec = self.registry.lookup(name)
        if spec is not None:
            cached = self._infos.get(name)
            if cached is None or cached[0] is not spec:
                cached = self._infos[name] = (spec, spec.info())
            return cached[1]
        info = self.announced.get(name)
        return info if info is not None else TaskInfo(name)

    def _still_running(self, rec: Routable) -> bool:
        """A limiter's question: is the task's dispatched attempt still running?"""
        current = self.tasks.get(rec.id)
        return current is rec and current.status is TaskStatus.RUNNING

    def _known(self, name: str) -> bool:
        return name in self.announced or self.registry.lookup(name) is not None

    def _scheduler(self) -> ActorRef:
        if self.scheduler is None:
            raise RuntimeError("the control plane has no scheduler")
        return self.scheduler

    def _enqueue(self, rec: TaskRecord, front: bool = False, now: float | None = None) -> None:
        rec.status = TaskStatus.QUEUED
        if front:
            self.queue.push_front(rec)
        else:
            rec.enqueued_at = trio.current_time() if now is None else now
            self.queue.push(rec)
        if self.events.subscribers:
            if self.queue.eligible_workers(rec.name):
                self.events.task_changed(rec)
            else:
                self.events.task_changed(rec, f"waiting for a worker that has {rec.name}")

    def _event(self, rec: TaskRecord) -> None:
        self.events.task_changed(rec)

    def _max_losses(self, rec: TaskRecord) -> int:
        own = rec.spec.max_worker_losses
        return self.config.max_worker_losses if own is None else own

    if TYPE_CHECKING:  # implemented by the parts

        def _finish(self, rec: TaskRecord, outcome: Outcome) -> None: ...
        def _terminal(self, rec: TaskRecord, status: TaskStatus, error: WireError) -> None: ...
        def _suspect(self, rec: TaskRecord) -> None: ...
        def _flush_outcomes(self) -> None: ...
        def _announce(self, infos: list[TaskInfo], names: Iterable[str]) -> None: ...
        def _accept_group(
            self, group: list[Submission], watcher: ActorRef | None
        ) -> int | list[str]: ...
        def _cancel(
            self, task_id: str, ctx: Context, reply: Reply | None = None, *, quiet: bool = False
        ) -> bool | None: ...
        def _restore(self, tasks: list[JournaledTask], done: Iterable[str] = ()) -> None: ...
