"""The ControlPlane actor: accepts tasks, queues them by priority, dispatches to free slots.

It owns every non-terminal task. Terminal outcomes go to the ResultCache; timers go
to the Scheduler; work goes to workers (SubworkerConnections and the local executor)
only for the slots they announced free, so no worker holds a private backlog.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from itertools import count
from typing import Any, Protocol

import attrs
import trio

from actors import Actor, ActorRef, Context, Delivery, MailboxFull
from actors._ref import Reply

from ._clock import WallClock
from ._control_plane_flows import AcceptFlow, FlowTable, RestoreFlows
from ._errors import PayloadTooLarge, QueueFull, ShuttingDown, TaskNotRegistered
from ._journal import (
    Announce,
    Durable,
    JournaledTask,
    Lost,
    NotDurable,
    Persist,
    Record,
    Started,
)
from ._messages import (
    CancelRun,
    ClusterStats,
    Event,
    Events,
    Outcome,
    QueueStats,
    Reclaim,
    Run,
    RunTasks,
    Submission,
    TaskInfo,
    WireError,
    WorkerStats,
)
from ._model import TaskStatus
from ._registry import Registry, TaskSpec
from ._result_cache import Store, Subscribe
from ._routing import Routable, Router, WorkerCapabilities
from ._scheduler import Due, ScheduleAt, Tick, Unschedule
from ._serialization import DEFAULT_MAX_PAYLOAD

log = logging.getLogger("fastworker.control_plane")

LOCAL_WORKER = "local"

PREFETCH_BELOW = 0.005
"""Seconds: only tasks whose runs average less than this are prefetched (see _dispatch)."""

RECENT_DONE = 20_000
"""Finished task ids remembered so a resubmission after a dropped link runs nothing twice."""

# -- in-process messages ------------------------------------------------------------------


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


class Observer(Protocol):
    """Told after each batch what the control plane did (read-only; the dashboard).

    ``submissions`` accepted; ``dispatched`` (worker id, runs) sent to workers;
    ``requeued`` (id, name, why) with why "retry", "redelivered", "periodic" (a new
    periodic run) or "refused" (the journal could not record it: it never runs);
    ``outcomes`` terminal (the list the cache gets). The lists are the control plane's
    own (no copies): an observer must not change them, must not block and should be
    quick: it runs in the control plane's turn, a plain call rather than a message, so
    feeding it costs no task switch.
    """

    def __call__(
        self,
        submissions: list[Submission],
        dispatched: list[tuple[str, list[Run]]],
        requeued: list[tuple[str, str, str]],
        outcomes: list[Outcome],
    ) -> None: ...


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


@attrs.frozen
class ControlPlaneConfig:
    """Limits and policies of the control plane."""

    max_queue: int = 100_000
    aging: float | None = 60.0
    worker_name: str = LOCAL_WORKER
    cancel_timeout: float = 5.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    prefetch_below: float = PREFETCH_BELOW
    result_ttl: float = 3600.0
    """How long a finished task's unique key still answers with its id (its result's TTL)."""
    unique_keys: int = 100_000
    """Finished tasks' unique keys remembered at most (the oldest are forgotten first)."""
    max_worker_losses: int = 2
    """A task in flight on this many lost workers ends ``failure`` with WorkerLost."""


class TaskRecord:
    """A non-terminal task as the control plane tracks it."""

    __slots__ = (
        "attempts",
        "enqueued_at",
        "id",
        "losses",
        "name",
        "payload",
        "periodic",
        "priority",
        "spec",
        "started_at",
        "status",
        "suspect",
        "worker",
    )

    def __init__(
        self, id: str, name: str, payload: bytes, priority: int, spec: TaskInfo, now: float
    ) -> None:
        self.id = id
        self.name = name
        self.payload = payload
        self.priority = priority
        self.spec = spec
        self.status = TaskStatus.PENDING
        self.attempts = 0
        self.enqueued_at = now
        self.worker: str | None = None
        self.started_at: float | None = None
        self.periodic = False
        self.losses = 0
        """Workers lost while this task was in flight on them."""
        self.suspect = False
        """In flight on a worker that died: it runs alone on a worker until it ends."""


class WorkerSlot:
    """A worker as the control plane sees it: its ref, slots and what it runs."""

    __slots__ = (
        "accepting",
        "completed",
        "free",
        "id",
        "local",
        "prefetch",
        "ref",
        "reserved",
        "retiring",
        "running",
        "runs_to",
        "slots",
        "solo",
        "waiting",
    )

    def __init__(
        self, id: str, ref: ActorRef, slots: int, busy: int, local: bool, prefetch: int = 0
    ) -> None:
        self.id = id
        self.ref = ref
        self.runs_to = ref
        self.slots = slots
        # free < 0: that many dispatched attempts wait in the worker's prefetch backlog.
        self.prefetch = prefetch
        # What the worker's backlog most likely holds, {id: (priority, order)}: attempts
        # sent past its free slots, until a freed slot starts the most urgent of them.
        self.waiting: dict[str, tuple[int, int]] = {}
        self.free = max(0, slots - busy)
        self.local = local
        self.accepting = True
        self.retiring = False
        self.running: set[str] = set()
        self.completed = 0
        self.solo: str | None = None
        """The suspect this worker runs alone (nothing else is sent to it meanwhile)."""
        self.reserved = False
        """Emptying for a waiting suspect: no new work until its running tasks end."""

    def release(self, task_id: str) -> None:
        """``task_id`` no longer runs here (finished, lost or given up on)."""
        self.running.discard(task_id)
        if self.solo == task_id:
            self.solo = None


class ControlPlane(Actor):
    """Owns the queues, the task table, the workers table and dispatch."""

    batch_limit = 4096

    def __init__(
        self,
        registry: Registry,
        cache: ActorRef,
        clock: WallClock,
        config: ControlPlaneConfig = ControlPlaneConfig(),
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.clock = clock
        self.config = config
        self.scheduler: ActorRef | None = None
        self.journal: ActorRef | None = None
        self.observer: Observer | None = None
        """Called after each batch (read-only: the dashboard's recent tasks, metrics)."""
        self._observed: list[Submission] = []
        self._observed_runs: list[tuple[str, list[Run]]] = []
        self._observed_requeued: list[tuple[str, str, str]] = []
        self._to_journal: list[JournaledTask] = []
        self._recent_done: dict[str, None] = {}
        self._cancelling: dict[str, list[Reply]] = {}
        self.tasks: dict[str, TaskRecord] = {}
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
        self._unique: dict[str, tuple[str, float]] = {}
        self._key_of: dict[str, str] = {}
        self.workers: dict[str, WorkerSlot] = {}
        self.periodic_active: dict[str, str] = {}
        self.draining = False
        self._idle_waiters: list[Reply] = []
        self._event_refs: list[ActorRef] = []
        self._events: list[Event] = []
        self._outcomes: list[Outcome] = []
        self._periodic_seq = count(1)
        self._run_time: dict[str, float] = {}
        self._dispatch_seq = count()
        self._self_ref: ActorRef | None = None
        self._suspects: list[TaskRecord] = []
        self._awaiting_durable: dict[str, float | None] = {}
        """Accepted tasks waiting for their journal commit: id -> trio time to run (eta)."""
        self.submitted = self.completed = self.failed = self.retried = 0
        self.redelivered = self.skipped_ticks = self.quarantined = self.refused = 0
        # -- workflows (see _control_plane_flows) --
        self.flows = FlowTable(self)
        self._ctx: Context | None = None

    def _context(self) -> Context:
        """The context (workflow steps cancel members outside any request)."""
        if self._ctx is None:
            raise RuntimeError("the control plane has not started")
        return self._ctx

    # -- the loop ---------------------------------------------------------------------
    async def started(self, ctx: Context) -> None:
        """Remember our own ref (the journal answers commits to it) and the context."""
        self._self_ref = ctx.self
        self._ctx = ctx

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Handle the batch, then dispatch and flush outcomes and events once."""
        try:
            await super().handle_batch(ctx, batch)
        finally:
            self.flows.settle()  # members of failed or cancelled workflows
            self._dispatch()
            self._flush()
            self._wake_for_rate_limits(ctx)

    def _wake_for_rate_limits(self, ctx: Context) -> None:
        """A rate-limited task waits: dispatch again when its window lets it start."""
        at = self.queue.next_wake
        self.queue.next_wake = None  # consumed: the next pass sets it again if still held
        if at is None or (self._wake_at is not None and self._wake_at <= at):
            return
        self._wake_at = at
        ctx.nursery.start_soon(self._wake_timer, ctx.self, at)

    async def _wake_timer(self, me: ActorRef, at: float) -> None:
        await trio.sleep_until(at)
        if self._wake_at == at:
            self._wake_at = None
        await me.tell(RateWake())

    # -- dispatch policy --------------------------------------------------------------
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

    def _unknown_names(self, names: set[str]) -> TaskNotRegistered:
        known = sorted(set(self.registry.names()) | set(self.announced))
        listed = ", ".join(known[:50]) + (" ..." if len(known) > 50 else "") or "none"
        missing = ", ".join(repr(n) for n in sorted(names))
        return TaskNotRegistered(
            f"no task named {missing} is registered on the control plane or announced by any "
            f"worker (known tasks: {listed}); check the name, or start a worker that has it "
            "(a subworker with the right --tasks modules); nothing was queued"
        )

    def _announce(self, infos: list[TaskInfo], names: Iterable[str]) -> None:
        """Remember the names a worker has, with their options; re-route changed ones."""
        by_name = {info.name: info for info in infos}
        new: list[TaskInfo] = []
        for name in names:
            if self.registry.lookup(name) is not None:
                continue
            info = by_name.get(name, TaskInfo(name))
            old = self.announced.get(name)
            if old == info:
                continue
            self.announced[name] = info
            new.append(info)
            if old is not None:
                log.warning(
                    "task %r: a worker announced other options (%s) than before (%s); "
                    "the newest apply",
                    name,
                    info,
                    old,
                )
                self.queue.policy_changed(name)
        if new and self.journal is not None:
            self.journal.tell_nowait(Announce(new))

    def _unique_id(self, key: str) -> str | None:
        """The id of the task holding ``key``: not terminal, or its result still kept."""
        entry = self._unique.get(key)
        if entry is None:
            return None
        task_id, expires = entry
        if task_id in self.tasks or expires > self.clock.now():
            return task_id
        del self._unique[key]
        return None

    def _dedupe(
        self, group: list[Submission], new: list[Submission]
    ) -> tuple[list[Submission], list[str]]:
        """Leave out submissions whose unique key is held; answer the ids the group maps to."""
        fresh: list[Submission] = []
        mapped: dict[str, str] = {}
        claimed: dict[str, str] = {}
        for sub in new:
            key = sub.unique_key
            if key is not None:
                holder = self._unique_id(key) or claimed.get(key)
                if holder is not None:
                    mapped[sub.id] = holder
                    continue
                claimed[key] = sub.id
            fresh.append(sub)
        return fresh, [mapped.get(s.id, s.id) for s in group]

    def _hold_key(self, task_id: str, key: str) -> None:
        self._unique[key] = (task_id, float("inf"))
        self._key_of[task_id] = key

    def _release_key(self, task_id: str) -> None:
        key = self._key_of.pop(task_id, None)
        if key is None:
            return
        entry = self._unique.pop(key, None)
        if entry is not None and entry[0] == task_id:
            # Kept (at the end, as the newest) while the result is cached.
            self._unique[key] = (task_id, self.clock.now() + self.config.result_ttl)
            if len(self._unique) > self.config.unique_keys + len(self._key_of):
                oldest = next(iter(self._unique))
                if self._unique[oldest][1] != float("inf"):
                    del self._unique[oldest]

    def _flush_outcomes(self) -> None:
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            self.cache.tell_nowait(Store(outcomes))
            if self.journal is not None:
                self.journal.tell_nowait(Record(outcomes))
        else:
            outcomes = []
        if self.observer is not None and (
            outcomes or self._observed or self._observed_runs or self._observed_requeued
        ):
            observed, self._observed = self._observed, []
            runs, self._observed_runs = self._observed_runs, []
            requeued, self._observed_requeued = self._observed_requeued, []
            try:
                self.observer(observed, runs, requeued, outcomes)
            except Exception:  # an observer never takes the control plane down
                log.exception("the observer %r failed; it is dropped", self.observer)
                self.observer = None

    def _flush(self) -> None:
        self._flush_outcomes()
        if self._events:
            events, self._events = self._events, []
            for ref in list(self._event_refs):
                try:
                    for start in range(0, len(events), 10_000):  # each message fits a frame
                        ref.tell_nowait(Events(events[start : start + 10_000]))
                except MailboxFull as exc:  # a slow follower loses events, not its feed
                    log.warning("%d events not sent to %r: %s", len(events), ref, exc)
                except Exception as exc:
                    log.warning("event subscriber %r dropped: %s", ref, exc)
                    self._event_refs.remove(ref)
        if self._idle_waiters and not self._running_count():
            waiters, self._idle_waiters = self._idle_waiters, []
            for reply in waiters:
                reply.resolve(None)

    async def receive(self, ctx: Context, message: Any) -> Any:
        """Dispatch on the message type."""
        kind = type(message)
        if kind is WorkerCompleted:
            self._completed(message)
        elif kind is RateWake:
            pass  # handle_batch dispatches after every batch
        elif kind is Accept:
            self._accept(message)
        elif kind is Durable:
            self._durable(message.ids)
            if self.flows:
                self.flows.durable(message.ids)
        elif kind is NotDurable:
            self._not_durable(message)
            if self.flows:
                self.flows.not_durable(message.ids, message.reason)
        elif kind is Due:
            self._due(message.ids)
        elif kind is Restore:
            for info in message.known:  # already in the journal: remembered, not re-written
                if self.registry.lookup(info.name) is None:
                    self.announced[info.name] = info
            self._restore(message.tasks, message.done)
        elif kind is Tick:
            self._tick(message)
        elif kind is WatchIds:
            self._watch(message)
        elif kind is StatusOf:
            rec = self.tasks.get(message.id)
            if rec is None and self.flows:
                return self.flows.status(message.id)
            return rec.status.value if rec is not None else None
        elif kind is CancelTask:
            answer = self._cancel(message.id, ctx, message.reply)
            if message.reply is None:
                return answer
            if answer is not None:
                message.reply.resolve(answer)
        elif kind is CancelDeadline:
            self._cancel_deadline_passed(message)
        elif kind is AcceptFlow:
            self.flows.accept(message)
        elif kind is RestoreFlows:
            self.flows.restore(message.flows)
        elif kind is WorkerJoined:
            self._worker_joined(message)
        elif kind is WorkerLeft:
            self._worker_left(message)
        elif kind is WorkerRetiring:
            worker = self.workers.get(message.id)
            if worker is not None:
                worker.accepting = False
                worker.retiring = True
                self._update_local()
        elif kind is EventSubscription:
            if message.enabled and message.ref not in self._event_refs:
                self._event_refs.append(message.ref)
            elif not message.enabled and message.ref in self._event_refs:
                self._event_refs.remove(message.ref)
        elif kind is GetClusterStats:
            return self.statistics(message.results_cached)
        elif kind is TaskDetail:
            rec = self.tasks.get(message.id)
            if rec is None:
                return None
            return {
                "name": rec.name,
                "status": rec.status.value,
                "priority": rec.priority,
                "attempts": rec.attempts,
                "worker": rec.worker,
                "payload": rec.payload,
            }
        elif kind is BeginDrain:
            self.draining = True
            return self._running_count()
        elif kind is WaitIdle:
            if self._running_count():
                self._idle_waiters.append(ctx.defer_reply())
        elif kind is Abandon:
            return self._abandon(message.reason)
        else:
            raise TypeError(f"ControlPlane does not handle {kind.__name__}")
        return None

    # -- submissions ------------------------------------------------------------------
    def _accept(self, msg: Accept) -> None:
        durable: list[tuple[Reply, Any]] = []
        for group, reply, watcher in msg.groups:
            try:
                accepted = self._accept_group(group, watcher)
            except (QueueFull, ShuttingDown, PayloadTooLarge, TaskNotRegistered) as exc:
                if reply is not None:
                    reply.fail(exc)
                continue
            if reply is None:
                continue
            if self.journal is None:
                reply.resolve(accepted)
            else:
                durable.append((reply, accepted))
        if self.journal is not None and (durable or self._to_journal):
            # Acknowledged only once on disk: the journal answers after its commit.
            tasks, self._to_journal = self._to_journal, []
            self.journal.tell_nowait(Persist(tasks, durable, self._self_ref))

    def _restore(self, tasks: list[JournaledTask], done: Iterable[str] = ()) -> None:
        """Queue (or schedule) tasks replayed from the journal, before serving anyone."""
        recent = self._recent_done
        for task_id in done:
            recent[task_id] = None
        while len(recent) > RECENT_DONE:
            del recent[next(iter(recent))]
        now = trio.current_time()
        wall = self.clock.now()
        scheduled: list[tuple[str, float]] = []
        for task in tasks:
            if task.id in self.tasks:
                continue
            if not self._known(task.name):
                # A journal from before routing remembered no names: the task waits for a
                # worker that has it, as it would have been accepted then.
                self._announce([], [task.name])
            spec = self._policy(task.name)
            rec = TaskRecord(task.id, task.name, task.payload, task.priority, spec, now)
            rec.attempts = task.attempts
            rec.losses = task.losses
            self.tasks[task.id] = rec
            if task.unique_key is not None:
                self._hold_key(task.id, task.unique_key)
            if task.losses:
                if task.losses >= self._max_losses(rec) or not rec.spec.redeliver:
                    self.quarantined += 1
                    log.error(
                        "task %s (%s) was running when this process died %d times: it fails "
                        "with WorkerLost and is not run again",
                        rec.name,
                        rec.id,
                        task.losses,
                    )
                    self._terminal(
                        rec,
                        TaskStatus.FAILURE,
                        WireError(
                            "WorkerLost",
                            f"task {rec.name!r} was running when its process died "
                            f"{task.losses} times: it is not run again (max_worker_losses)",
                        ),
                    )
                else:
                    self._suspect(rec)
                continue
            if task.eta is not None and task.eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((task.id, self.clock.to_trio(task.eta)))
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(tasks)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))

    def _accept_group(self, group: list[Submission], watcher: ActorRef | None) -> int | list[str]:
        """Accept a group: its size, or (with unique keys) the id each submission maps to."""
        if self.draining:
            raise ShuttingDown("the control plane is shutting down and takes no new work")
        # A resubmission (after a dropped link) is idempotent: ids already accepted,
        # running or recently finished are not taken again.
        done = self._recent_done
        new = [s for s in group if s.id not in self.tasks and s.id not in done]
        limit = self.config.max_payload
        for sub in new:
            if len(sub.payload) > limit:
                # Clients check this too; a client with a raised limit must not be able
                # to park oversized data in this process.
                raise PayloadTooLarge(
                    f"the arguments of task {sub.name!r} are {len(sub.payload)} bytes packed, "
                    f"over the control plane's {limit}-byte limit: pass a reference (a path, "
                    "a URL, a database key) instead of the data"
                )
        policies: dict[str, TaskInfo] = {}
        policy = self._policy
        known = self._known
        for name in {s.name for s in new}:
            if known(name):
                policies[name] = policy(name)
        if len(policies) < len({s.name for s in new}):
            raise self._unknown_names({s.name for s in new} - set(policies))
        ids: list[str] | None = None
        if any(s.unique_key is not None for s in new):
            new, ids = self._dedupe(group, new)
        if len(self.tasks) + len(new) > self.config.max_queue:
            raise QueueFull(
                f"the queue is full ({self.config.max_queue} tasks waiting or running): "
                "retry later, add subworkers, or raise max_queue"
            )
        if watcher is not None and group:
            self._flush_outcomes()
            watched = ids if ids is not None else [s.id for s in group]
            self.cache.tell_nowait(Subscribe(list(dict.fromkeys(watched)), watcher))
        if self.observer is not None:
            self._observed.extend(new)
        now = trio.current_time()
        wall = self.clock.now()
        scheduled: list[tuple[str, float]] = []
        for sub in new:
            spec = policies[sub.name]
            priority = sub.priority if sub.priority is not None else spec.priority
            rec = TaskRecord(sub.id, sub.name, sub.payload, priority, spec, now)
            self.tasks[sub.id] = rec
            if sub.unique_key is not None:
                self._hold_key(sub.id, sub.unique_key)
            eta = sub.eta if sub.countdown is None else wall + sub.countdown
            if self.journal is not None:
                # It runs only once it is on disk (Durable): a failed commit refuses it,
                # and a refused task must never have run.
                self._to_journal.append(
                    JournaledTask(
                        sub.id, sub.name, sub.payload, priority, eta, unique_key=sub.unique_key
                    )
                )
                self._awaiting_durable[sub.id] = (
                    self.clock.to_trio(eta) if eta is not None and eta > wall else None
                )
                continue
            if eta is not None and eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((sub.id, self.clock.to_trio(eta)))
                self._event(rec)
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(new)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))
        return ids if ids is not None else len(group)

    def _durable(self, ids: list[str]) -> None:
        """Journaled tasks are on disk: queue or schedule them now."""
        awaiting = self._awaiting_durable
        now = trio.current_time()
        scheduled: list[tuple[str, float]] = []
        for task_id in ids:
            if task_id not in awaiting:
                continue
            at = awaiting.pop(task_id)
            rec = self.tasks.get(task_id)
            if rec is None or rec.status is not TaskStatus.PENDING:
                continue
            if at is not None and at > now:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((task_id, at))
                self._event(rec)
            else:
                self._enqueue(rec, now=now)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))

    def _not_durable(self, msg: NotDurable) -> None:
        """The journal could not record these tasks: they were refused and never run."""
        awaiting = self._awaiting_durable
        for task_id in msg.ids:
            if awaiting.pop(task_id, False) is False:
                continue
            rec = self.tasks.get(task_id)
            if rec is None or rec.status is not TaskStatus.PENDING:
                continue
            del self.tasks[task_id]
            self.submitted -= 1
            self.refused += 1
            key = self._key_of.pop(task_id, None)
            if key is not None and self._unique.get(key, ("",))[0] == task_id:
                del self._unique[key]  # refused: as if never submitted
            if self.observer is not None:
                self._observed_requeued.append((task_id, rec.name, "refused"))

    def _abandon(self, reason: str) -> tuple[int, int]:
        running = waiting = 0
        self.draining = True
        for rec in list(self.tasks.values()):
            if rec.status is TaskStatus.RUNNING:
                running += 1
                if self.journal is None:
                    worker = self.workers.get(rec.worker) if rec.worker is not None else None
                    if worker is not None:
                        worker.release(rec.id)
                    self._terminal(
                        rec,
                        TaskStatus.FAILURE,
                        WireError(
                            "WorkerLost",
                            f"the control plane stopped while the task ran ({reason}); "
                            "it had no journal, so the task is lost",
                        ),
                    )
            else:
                waiting += 1
                if self.journal is None:
                    if rec.status is TaskStatus.QUEUED and not rec.suspect:
                        self.queue.discard(rec)
                    self._terminal(
                        rec,
                        TaskStatus.FAILURE,
                        WireError(
                            "ShuttingDown",
                            f"the control plane stopped before the task started ({reason}); "
                            "it had no journal, so the task is lost: submit it again",
                        ),
                    )
        return running, waiting

    def _enqueue(self, rec: TaskRecord, front: bool = False, now: float | None = None) -> None:
        rec.status = TaskStatus.QUEUED
        if front:
            self.queue.push_front(rec)
        else:
            rec.enqueued_at = trio.current_time() if now is None else now
            self.queue.push(rec)
        if self._event_refs:
            self._event(rec)
            if not self.queue.eligible_workers(rec.name):
                self._events[-1] = attrs.evolve(
                    self._events[-1], detail=f"waiting for a worker that has {rec.name}"
                )

    def _scheduler(self) -> ActorRef:
        if self.scheduler is None:
            raise RuntimeError("the control plane has no scheduler")
        return self.scheduler

    # -- timers -----------------------------------------------------------------------
    def _due(self, ids: Iterable[str]) -> None:
        for task_id in ids:
            rec = self.tasks.get(task_id)
            if rec is not None and rec.status in (TaskStatus.SCHEDULED, TaskStatus.RETRYING):
                self._enqueue(rec)

    def _tick(self, tick: Tick) -> None:
        if self.draining:
            return
        active = self.periodic_active.get(tick.name)
        if active is not None and active in self.tasks:
            self.skipped_ticks += 1
            log.info(
                "periodic task %r: previous run %s still active, tick skipped", tick.name, active
            )
            return
        if self.registry.lookup(tick.name) is None:
            return
        spec = self._policy(tick.name)
        task_id = f"{tick.name}@{int(tick.fire_at)}-{next(self._periodic_seq)}"
        rec = TaskRecord(
            task_id, tick.name, b"\x92\x90\x80", spec.priority, spec, trio.current_time()
        )
        rec.periodic = True
        if self.observer is not None:
            self._observed_requeued.append((task_id, tick.name, "periodic"))
        self.tasks[task_id] = rec
        self.periodic_active[tick.name] = task_id
        self.submitted += 1
        self._enqueue(rec)

    # -- dispatch ---------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Queued tasks to workers: suspects alone first, free slots, then prefetch backlogs.

        -- prefetch (issue 15) --
        A subworker that announced ``prefetch`` keeps up to that many attempts ready
        beyond its slots (run there in priority order), so a slot does not wait a round
        trip between two tasks. Only tasks known to be short are prefetched
        (``prefetch_below``), so a long task never waits behind another worker's
        backlog. Priority stays strict: while a queued task waits for a slot, no worker
        keeps less urgent work unstarted. Those workers are asked to give it back
        (``Reclaim``), and the queued task takes the first slot that frees anywhere. A
        task is only prefetched if nothing less urgent is queued (else a slot freeing
        elsewhere would start that one first). A worker running a suspect alone or
        emptying for one gets no prefetch, and gives its backlog back.
        """
        if self.draining:
            return
        batches: dict[str, list[Run]] = {}
        if self._suspects:
            self._dispatch_suspects(batches)
        if len(self.queue):
            workers = [
                w
                for w in self.workers.values()
                if w.accepting and w.solo is None and not w.reserved
            ]
            ready = [w for w in workers if w.free > 0]
            router = self.queue
            router.begin_pass()
            pop = router.pop_for
            index = 0
            while ready:
                worker = ready[index % len(ready)]
                rec = pop(worker.id)
                if rec is None:
                    # Nothing this worker may run now; others may still have work.
                    ready.remove(worker)
                    continue
                self._start(rec, worker, batches)
                if worker.free == 0:
                    ready.remove(worker)
                else:
                    index += 1
            if len(self.queue) and any(w.prefetch or w.waiting for w in workers):
                self._prefetch(workers, batches)
            router.end_pass()
        for worker in self.workers.values():
            if worker.waiting and (worker.reserved or worker.solo is not None):
                self._reclaim_all(worker)
        for worker_id, runs in batches.items():
            self._send_runs(self.workers[worker_id], runs)
        if self.observer is not None:
            self._observed_runs.extend(batches.items())

    def _start(self, rec: TaskRecord, worker: WorkerSlot, batches: dict[str, list[Run]]) -> None:
        rec.status = TaskStatus.RUNNING
        rec.attempts += 1
        rec.worker = worker.id
        worker.free -= 1
        worker.running.add(rec.id)
        batches.setdefault(worker.id, []).append(
            Run(rec.id, rec.name, rec.payload, rec.attempts, rec.spec.timeout, rec.priority)
        )
        if self._event_refs:
            self._event(rec)

    def _send_runs(self, worker: WorkerSlot, runs: list[Run]) -> None:
        """Hand runs to a worker; in-process runs are journaled first (see Journal.Started).

        A subworker's runs go straight to its executor over the link (one hop less than
        through its SubworkerConnection, which stays the fallback).
        """
        if worker.local and self.journal is not None:
            # A task run in this very process may crash it: the mark is durable before the
            # task starts, so a restart knows it was running and counts the loss.
            self.journal.tell_nowait(Started([run.id for run in runs], worker.ref, RunTasks(runs)))
        elif worker.runs_to is worker.ref:
            worker.ref.tell_nowait(RunTasks(runs))
        else:
            try:
                worker.runs_to.tell_nowait(RunTasks(runs))
            except Exception as exc:  # the link is closing, full or the batch too big:
                log.debug("direct RunTasks to %s failed (%s); via its connection", worker.id, exc)
                worker.ref.tell_nowait(RunTasks(runs))  # handled as before the shortcut

    @staticmethod
    def _reclaim_all(worker: WorkerSlot) -> None:
        """Ask a worker for its whole backlog back (it runs a suspect alone, or empties)."""
        worker.waiting.clear()
        worker.ref.tell_nowait(Reclaim(-1))

    def _prefetch(self, workers: list[WorkerSlot], batches: dict[str, list[Run]]) -> None:
        """After the free slots: backlogs for short tasks, or reclaim (see ``_dispatch``).

        Only for a worker that takes from a single class of tasks without limits (the
        usual cluster); routed or rate- and concurrency-limited work goes by credits.
        """
        router = self.queue
        now = trio.current_time()
        for worker in workers:
            classes = router.classes_for(worker.id)
            if len(classes) != 1 or classes[0].limiter is not None:
                continue
            queue = classes[0].queue
            while True:
                head = queue.peek(now)
                if head is None:
                    break
                # A queued task waits for a slot: no less urgent work may wait unstarted.
                if self._reclaim_less_urgent(head[1], workers):
                    return
                if not worker.prefetch or worker.free <= -worker.prefetch:
                    break
                rec = router.pop_for(worker.id)
                if rec is None:
                    break
                if not self._prefetchable(rec, queue.depths()):
                    router.push_front(rec)
                    break
                worker.waiting[rec.id] = (rec.priority, next(self._dispatch_seq))
                self._start(rec, worker, batches)

    def _prefetchable(self, rec: TaskRecord, depths: list[int]) -> bool:
        """True if ``rec`` may wait in a worker's backlog.

        Its runs are known to be short; it may be redelivered (an attempt lost with its
        worker before it started still counts as in flight there); and nothing less
        urgent is queued (a slot freeing elsewhere would start that one first).
        """
        seconds = self._run_time.get(rec.name)
        return (
            seconds is not None
            and seconds < self.config.prefetch_below
            and rec.spec.redeliver
            and not any(depths[level] for level in range(rec.priority + 1, len(depths)))
        )

    @staticmethod
    def _reclaim_less_urgent(priority: int, workers: list[WorkerSlot]) -> bool:
        """Ask back unstarted attempts less urgent than ``priority``; True if any may exist.

        They are taken off ``waiting`` at once (so they are asked for once); the worker
        returns them (``Completed.returned``), or reports them done if it had started
        them already.
        """
        found = False
        for worker in workers:
            waiting = worker.waiting
            if not waiting:
                continue
            less = [i for i, (level, _) in waiting.items() if level > priority]
            if less:
                found = True
                for task_id in less:
                    del waiting[task_id]
                worker.ref.tell_nowait(Reclaim(priority))
        return found

    @staticmethod
    def _started(worker: WorkerSlot, msg: WorkerCompleted) -> None:
        """Update what ``worker`` most likely still holds unstarted after ``msg``."""
        waiting = worker.waiting
        slots_freed = msg.credits - len(msg.returned)  # returned ones held no slot
        for task_id, _ in msg.returned:
            waiting.pop(task_id, None)
        for outcome in msg.outcomes:
            if waiting.pop(outcome.id, None) is not None:
                slots_freed -= 1
        # Each freed slot started the most urgent (then oldest) attempt of the backlog.
        for _ in range(min(slots_freed, len(waiting))):
            del waiting[min(waiting, key=waiting.__getitem__)]

    def _dispatch_suspects(self, batches: dict[str, list[Run]]) -> None:
        """Start waiting suspects, each alone on an empty worker; reserve workers for them.

        A worker reserved for a suspect gets no new work until its running tasks have
        ended; at most half of the workers (at least one) are reserved at a time, so
        the rest keep serving the queue while suspects are tried one by one.
        """
        suspects = self._suspects
        suspects[:] = [r for r in suspects if r.status is TaskStatus.QUEUED and r.suspect]
        if not suspects:
            for worker in self.workers.values():
                worker.reserved = False
            return
        candidates = [
            w for w in self.workers.values() if w.accepting and w.solo is None and w.slots > 0
        ]
        can_run = self.queue.can_run
        for worker in candidates:
            if not suspects:
                break
            if not worker.running and worker.free > 0:
                # The most urgent suspect this worker has the task for (capability routing).
                rec = next((r for r in suspects if can_run(worker.id, r.name)), None)
                if rec is None:
                    continue
                worker.reserved = False
                suspects.remove(rec)
                self._start(rec, worker, batches)
                self.queue.note_started(rec)
                worker.solo = rec.id
        waiting = len(suspects)
        reserved = [w for w in candidates if w.reserved and w.solo is None]
        cap = max(1, len(candidates) // 2)
        if waiting > len(reserved) and len(reserved) < cap:
            # Empty the least busy workers (that can run a waiting suspect) for them.
            spare = sorted(
                (
                    w
                    for w in candidates
                    if not w.reserved
                    and w.solo is None
                    and any(can_run(w.id, r.name) for r in suspects)
                ),
                key=lambda w: len(w.running),
            )
            for worker in spare[: min(waiting, cap) - len(reserved)]:
                worker.reserved = True
        elif not waiting:
            for worker in reserved:
                worker.reserved = False

    def _running_count(self) -> int:
        return sum(len(w.running) for w in self.workers.values())

    # -- outcomes ---------------------------------------------------------------------
    def _completed(self, msg: WorkerCompleted) -> None:
        worker = self.workers.get(msg.id)
        if worker is not None:
            worker.free = min(worker.slots, worker.free + msg.credits)
            if worker.waiting:
                self._started(worker, msg)
        tasks = self.tasks
        if msg.returned:
            self._returned(msg)
        run_time = self._run_time
        for outcome in msg.outcomes:
            rec = tasks.get(outcome.id)
            if (
                rec is None
                or rec.attempts != outcome.attempt
                or rec.status is not TaskStatus.RUNNING
            ):
                continue  # fenced: a late result of an attempt that no longer counts
            if outcome.completed_at is not None and outcome.started_at is not None:
                seconds = outcome.completed_at - outcome.started_at
                last = run_time.get(rec.name)
                run_time[rec.name] = seconds if last is None else 0.8 * last + 0.2 * seconds
            if worker is not None:
                worker.release(rec.id)
                worker.completed += 1
            if (
                outcome.status == "failure"
                and outcome.retryable
                and (rec.attempts <= rec.spec.retries)
                and rec.id not in self._cancelling
            ):
                self._retry(rec)
                continue
            self._finish(rec, outcome)

    def _returned(self, msg: WorkerCompleted) -> None:
        """Attempts a worker gives back unstarted: queued again at the head of their level."""
        worker = self.workers.get(msg.id)
        for task_id, attempt in msg.returned:
            rec = self.tasks.get(task_id)
            if (
                rec is None
                or rec.attempts != attempt
                or rec.status is not TaskStatus.RUNNING
                or rec.worker != msg.id
            ):
                continue
            if worker is not None:
                worker.release(task_id)
            if task_id in self._cancelling:
                self._terminal(
                    rec, TaskStatus.CANCELLED, WireError("TaskCancelled", "cancelled by request")
                )
                continue
            rec.attempts -= 1  # it never started: this attempt does not count
            rec.worker = None
            self._enqueue(rec, front=True)

    def _retry(self, rec: TaskRecord) -> None:
        spec = rec.spec
        delay = min(spec.retry_backoff_max, spec.retry_backoff * 2 ** (rec.attempts - 1))
        delay *= random.uniform(0.5, 1.0)  # full-ish jitter: spread a burst of retries
        rec.status = TaskStatus.RETRYING
        rec.worker = None
        self.retried += 1
        if self.observer is not None:
            self._observed_requeued.append((rec.id, rec.name, "retry"))
        self._event(rec)
        if delay <= 0:
            self._enqueue(rec)
        else:
            self._scheduler().tell_nowait(ScheduleAt([(rec.id, trio.current_time() + delay)]))

    def _finish(self, rec: TaskRecord, outcome: Outcome) -> None:
        del self.tasks[rec.id]
        if self._key_of:
            self._release_key(rec.id)
        replies = self._cancelling.pop(rec.id, None)
        if replies:
            # A cancel was waiting: it succeeded if the task ended cancelled; a task that
            # finished first (success or failure) had already finished.
            for reply in replies:
                reply.resolve(outcome.status == TaskStatus.CANCELLED.value)
        done = self._recent_done
        done[rec.id] = None
        if len(done) > RECENT_DONE:
            del done[next(iter(done))]
        if rec.periodic and self.periodic_active.get(rec.name) == rec.id:
            del self.periodic_active[rec.name]
        if outcome.status == "success":
            self.completed += 1
        else:
            self.failed += 1
        if not outcome.name:
            outcome = attrs.evolve(outcome, name=rec.name)
        self._outcomes.append(outcome)
        if self._event_refs:
            self._events.append(
                Event("task", rec.id, outcome.status, rec.name, outcome.worker, self.clock.now())
            )
        if self.flows:
            self.flows.member_finished(rec.id, outcome)  # a workflow member: move its flow on

    def _terminal(self, rec: TaskRecord, status: TaskStatus, error: WireError) -> None:
        self._finish(
            rec,
            Outcome(
                id=rec.id,
                status=status.value,
                attempt=rec.attempts,
                error=error,
                started_at=rec.started_at,
                completed_at=self.clock.now(),
                worker=rec.worker,
                name=rec.name,
            ),
        )

    # -- cancellation -----------------------------------------------------------------
    def _cancel(
        self, task_id: str, ctx: Context, reply: Reply | None = None, *, quiet: bool = False
    ) -> bool | None:
        """Cancel a task. A running one gets a request, an ack and a bounded wait.

        Queued, scheduled or retrying: removed at once (True). Running: the worker is
        asked to cancel and the answer waits for its confirmation (the task's ``finally``
        has run), at most ``cancel_timeout``; a sync task in a thread cannot be
        interrupted, so past the bound it is marked cancelled and its late result
        discarded. ``quiet`` (a workflow cancelling its members): no one waits for an answer.
        """
        rec = self.tasks.get(task_id)
        if rec is None:
            if task_id in self.flows:  # a workflow: answered once it is over
                return self.flows.cancel(task_id, reply if reply is not None else ctx.defer_reply())
            return False
        status = rec.status
        if status is TaskStatus.RUNNING and rec.worker is not None:
            worker = self.workers.get(rec.worker)
            if worker is not None:
                waiting = self._cancelling.get(task_id)
                deferred = None if quiet else (reply if reply is not None else ctx.defer_reply())
                if waiting is None:
                    self._cancelling[task_id] = [deferred] if deferred is not None else []
                    worker.ref.tell_nowait(CancelRun(task_id, rec.attempts))
                    ctx.nursery.start_soon(
                        self._cancel_timer, ctx.self, CancelDeadline(task_id, rec.attempts)
                    )
                elif deferred is not None:
                    waiting.append(deferred)
                return None
        if status is TaskStatus.QUEUED and not rec.suspect:
            self.queue.discard(rec)
        elif status in (TaskStatus.SCHEDULED, TaskStatus.RETRYING):
            self._scheduler().tell_nowait(Unschedule([task_id]))
        rec.status = TaskStatus.CANCELLED
        self._terminal(
            rec, TaskStatus.CANCELLED, WireError("TaskCancelled", "cancelled by request")
        )
        return True

    async def _cancel_timer(self, me: ActorRef, deadline: CancelDeadline) -> None:
        await trio.sleep(self.config.cancel_timeout)
        await me.tell(deadline)

    def _cancel_deadline_passed(self, msg: CancelDeadline) -> None:
        rec = self.tasks.get(msg.id)
        if rec is None or msg.id not in self._cancelling or rec.attempts != msg.attempt:
            return
        worker = self.workers.get(rec.worker) if rec.worker is not None else None
        if worker is not None:
            worker.release(rec.id)
        self._terminal(
            rec,
            TaskStatus.CANCELLED,
            WireError(
                "TaskCancelled",
                f"cancelled by request; the worker did not confirm within "
                f"{self.config.cancel_timeout}s (a sync task cannot be interrupted: it runs "
                "on in its thread and its result is discarded)",
            ),
        )

    # -- workers ----------------------------------------------------------------------
    def _worker_joined(self, msg: WorkerJoined) -> None:
        old = self.workers.get(msg.id)
        if old is not None:
            self._worker_left(
                WorkerLeft(
                    msg.id,
                    [(i, self.tasks[i].attempts) for i in old.running if i in self.tasks],
                    "replaced",
                )
            )
        self.workers[msg.id] = WorkerSlot(
            msg.id, msg.ref, msg.slots, msg.busy, msg.local, msg.prefetch
        )
        if msg.runs_to is not None:
            self.workers[msg.id].runs_to = msg.runs_to
        if msg.tasks is not None:
            self._announce(msg.infos, msg.tasks)
        self.queue.set_worker(
            msg.id,
            WorkerCapabilities(
                None if msg.tasks is None else frozenset(msg.tasks),
                None if msg.queues is None else frozenset(msg.queues),
            ),
        )
        self._update_local()
        log.info("worker %s joined with %d slots", msg.id, msg.slots)
        if self._event_refs:
            self._events.append(Event("worker", msg.id, "joined", at=self.clock.now()))

    def _worker_left(self, msg: WorkerLeft) -> None:
        worker = self.workers.pop(msg.id, None)
        self.queue.remove_worker(msg.id)
        running = list(msg.running)
        if worker is not None:
            # Work dispatched after the connection took its in-flight snapshot (it was
            # already gone, so the RunTasks was dead-lettered) is lost with it too.
            reported = {task_id for task_id, _ in running}
            running += [
                (task_id, self.tasks[task_id].attempts)
                for task_id in self._in_task_order(worker.running)
                if task_id not in reported
            ]
        lost = 0
        losses: list[tuple[str, int, int]] = []
        for task_id, attempt in running:
            rec = self.tasks.get(task_id)
            if rec is None or rec.status is not TaskStatus.RUNNING or rec.attempts != attempt:
                continue
            if rec.worker != msg.id:
                continue
            lost += 1
            rec.losses += 1
            losses.append((rec.id, rec.attempts, rec.losses))
            if rec.id in self._cancelling:
                self._terminal(
                    rec,
                    TaskStatus.CANCELLED,
                    WireError("TaskCancelled", "cancelled by request (its worker was lost)"),
                )
            elif not rec.spec.redeliver:
                self._terminal(
                    rec,
                    TaskStatus.FAILURE,
                    WireError(
                        "WorkerLost",
                        f"the worker running it ({msg.id}) was lost: {msg.reason or 'gone'}; "
                        "the task opted out of redelivery (redeliver=False)",
                    ),
                )
            elif rec.losses >= self._max_losses(rec):
                self.quarantined += 1
                log.error(
                    "task %s (%s) was in flight on %d lost workers, the last one (%s) alone: "
                    "it fails with WorkerLost and is not run again",
                    rec.name,
                    rec.id,
                    rec.losses,
                    msg.id,
                )
                self._terminal(rec, TaskStatus.FAILURE, self._worker_lost_error(rec, msg))
            else:
                self.redelivered += 1
                if self.observer is not None:
                    self._observed_requeued.append((rec.id, rec.name, "redelivered"))
                rec.worker = None
                self._suspect(rec)
        if losses and self.journal is not None:
            self.journal.tell_nowait(Lost(losses))
        if worker is not None:
            log.warning(
                "worker %s left (%s); %d tasks in flight handled",
                msg.id,
                msg.reason or "gone",
                lost,
            )
        self._update_local()
        if self._event_refs:
            self._events.append(Event("worker", msg.id, "left", at=self.clock.now()))

    def _in_task_order(self, ids: set[str]) -> list[str]:
        """Known ``ids`` in the order their tasks were accepted (redelivery keeps it).

        Runs go straight to a subworker's executor, so its connection's in-flight table
        does not list them: the task table's order stands in for the dispatch order.
        """
        if not ids:
            return []
        return [task_id for task_id in self.tasks if task_id in ids]

    def _max_losses(self, rec: TaskRecord) -> int:
        own = rec.spec.max_worker_losses
        return self.config.max_worker_losses if own is None else own

    def _worker_lost_error(self, rec: TaskRecord, msg: WorkerLeft) -> WireError:
        return WireError(
            "WorkerLost",
            f"task {rec.name!r} took down its worker {rec.losses} times (the last: worker "
            f"{msg.id}, {msg.reason or 'gone'}; it ran alone there, so it is the cause): it "
            "is not run again. A task that kills its process (a crash in a C extension, "
            "running out of memory, os._exit) or blocks its event loop fails this way; "
            "max_worker_losses sets how many losses a task may cause",
        )

    def _suspect(self, rec: TaskRecord) -> None:
        """Queue a task that was in flight on a lost worker: it will run alone."""
        rec.suspect = True
        rec.status = TaskStatus.QUEUED
        suspects = self._suspects
        suspects.append(rec)
        suspects.sort(key=lambda r: r.priority)
        if self._event_refs:
            self._event(rec)

    def _update_local(self) -> None:
        """The local executor takes work only while no subworker is connected."""
        local = self.workers.get(self.config.worker_name)
        if local is not None:
            local.accepting = not any(not w.local and not w.retiring for w in self.workers.values())

    def _watch(self, msg: WatchIds) -> None:
        # Outcomes finished earlier in this batch must reach the cache before the watch.
        self._flush_outcomes()
        if self.flows:  # a workflow, or a member whose turn has not come, is known too
            known = [i for i in msg.ids if i in self.tasks or self.flows.knows(i)]
            unknown = [i for i in msg.ids if i not in self.tasks and not self.flows.knows(i)]
        else:
            known = [i for i in msg.ids if i in self.tasks]
            unknown = [i for i in msg.ids if i not in self.tasks]
        if known:
            self.cache.tell_nowait(Subscribe(known, msg.ref))
        if unknown:
            self.cache.tell_nowait(Subscribe(unknown, msg.ref, unknown_if_absent=True))

    def _event(self, rec: TaskRecord) -> None:
        if self._event_refs:
            self._events.append(
                Event("task", rec.id, rec.status.value, rec.name, rec.worker, self.clock.now())
            )

    # -- statistics -------------------------------------------------------------------
    def statistics(self, results_cached: int = 0) -> ClusterStats:
        """A snapshot for ``top``, tests and the bench."""
        depths = [0, 0, 0, 0]
        scheduled = 0
        waiting_names = set(self.queue.waiting_names())
        waiting: dict[str, int] = {}
        for rec in self.tasks.values():
            if rec.status is TaskStatus.QUEUED:
                depths[rec.priority] += 1
                if rec.name in waiting_names or (
                    rec.suspect and not self.queue.eligible_workers(rec.name)
                ):
                    waiting[rec.name] = waiting.get(rec.name, 0) + 1
            elif rec.status in (TaskStatus.SCHEDULED, TaskStatus.RETRYING):
                scheduled += 1
        return ClusterStats(
            queued=QueueStats(*depths),
            scheduled=scheduled,
            running=self._running_count(),
            workers=[
                WorkerStats(w.id, w.slots, w.free, len(w.running), w.completed)
                for w in self.workers.values()
            ],
            submitted=self.submitted,
            completed=self.completed,
            failed=self.failed,
            retried=self.retried,
            redelivered=self.redelivered,
            results_cached=results_cached,
            draining=self.draining,
            waiting=waiting,
            suspects=sum(1 for r in self._suspects if r.status is TaskStatus.QUEUED and r.suspect),
            quarantined=self.quarantined,
        )
