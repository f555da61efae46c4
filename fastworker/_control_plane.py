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

from actors import Actor, ActorRef, Context, Delivery
from actors._ref import Reply

from ._clock import WallClock
from ._errors import PayloadTooLarge, QueueFull, ShuttingDown
from ._journal import JournaledTask, Persist, Record
from ._messages import (
    CancelRun,
    ClusterStats,
    Event,
    Events,
    Outcome,
    QueueStats,
    Run,
    RunTasks,
    Submission,
    WireError,
    WorkerStats,
)
from ._model import TaskStatus
from ._queue import PriorityQueues
from ._registry import Registry, TaskSpec
from ._result_cache import Store, Subscribe
from ._scheduler import Due, ScheduleAt, Tick, Unschedule
from ._serialization import DEFAULT_MAX_PAYLOAD

log = logging.getLogger("fastworker.control_plane")

LOCAL_WORKER = "local"

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
class TaskInfo:
    """Answer what is known of a non-terminal task (read-only), or None.

    The answer is a dict: ``name``, ``status``, ``priority``, ``attempts``, ``worker``,
    ``payload`` (the packed arguments).
    """

    id: str


@attrs.frozen
class CancelTask:
    """Cancel a task; answers True if it was not terminal."""

    id: str


@attrs.frozen
class CancelDeadline:
    """The bounded wait for a worker to confirm a cancel is over."""

    id: str
    attempt: int


@attrs.frozen
class WorkerJoined:
    """A worker with ``slots`` slots (``busy`` of them already taken) can take work."""

    id: str
    ref: ActorRef
    slots: int
    busy: int = 0
    local: bool = False


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
    """Outcomes from a worker and the slots it freed."""

    id: str
    outcomes: list[Outcome]
    credits: int


@attrs.frozen
class EventSubscription:
    """Start or stop pushing Events to ``ref``."""

    ref: ActorRef
    enabled: bool


class Observer(Protocol):
    """Told after each batch what the control plane did (read-only; the dashboard).

    ``submissions`` accepted; ``dispatched`` (worker id, runs) sent to workers;
    ``requeued`` (id, name, why) with why "retry", "redelivered" or "periodic" (a new
    periodic run); ``outcomes`` terminal (the list the cache gets). The lists are the
    control plane's own (no copies): an observer must not change them, must not block
    and should be quick: it runs in the control plane's turn, a plain call rather than
    a message, so feeding it costs no task switch.
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
class ControlPlaneConfig:
    """Limits and policies of the control plane."""

    max_queue: int = 100_000
    aging: float | None = 60.0
    worker_name: str = LOCAL_WORKER
    cancel_timeout: float = 5.0
    max_payload: int = DEFAULT_MAX_PAYLOAD


class TaskRecord:
    """A non-terminal task as the control plane tracks it."""

    __slots__ = (
        "attempts",
        "enqueued_at",
        "id",
        "name",
        "payload",
        "periodic",
        "priority",
        "spec",
        "started_at",
        "status",
        "worker",
    )

    def __init__(
        self, id: str, name: str, payload: bytes, priority: int, spec: TaskSpec, now: float
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


class WorkerSlot:
    """A worker as the control plane sees it: its ref, slots and what it runs."""

    __slots__ = (
        "accepting",
        "completed",
        "free",
        "id",
        "local",
        "ref",
        "retiring",
        "running",
        "slots",
    )

    def __init__(self, id: str, ref: ActorRef, slots: int, busy: int, local: bool) -> None:
        self.id = id
        self.ref = ref
        self.slots = slots
        self.free = max(0, slots - busy)
        self.local = local
        self.accepting = True
        self.retiring = False
        self.running: set[str] = set()
        self.completed = 0


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
        self.queue: PriorityQueues[TaskRecord] = PriorityQueues(
            config.aging, is_live=lambda rec: rec.status is TaskStatus.QUEUED
        )
        self.workers: dict[str, WorkerSlot] = {}
        self.periodic_active: dict[str, str] = {}
        self.draining = False
        self._idle_waiters: list[Reply] = []
        self._event_refs: list[ActorRef] = []
        self._events: list[Event] = []
        self._outcomes: list[Outcome] = []
        self._periodic_seq = count(1)
        self.submitted = self.completed = self.failed = self.retried = 0
        self.redelivered = self.skipped_ticks = 0

    # -- the loop ---------------------------------------------------------------------
    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Handle the batch, then dispatch and flush outcomes and events once."""
        try:
            await super().handle_batch(ctx, batch)
        finally:
            self._dispatch()
            self._flush()

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
                    ref.tell_nowait(Events(events))
                except Exception as exc:
                    log.debug("event subscriber %r dropped: %s", ref, exc)
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
        elif kind is Accept:
            self._accept(message)
        elif kind is Due:
            self._due(message.ids)
        elif kind is Restore:
            self._restore(message.tasks, message.done)
        elif kind is Tick:
            self._tick(message)
        elif kind is WatchIds:
            self._watch(message)
        elif kind is StatusOf:
            rec = self.tasks.get(message.id)
            return rec.status.value if rec is not None else None
        elif kind is CancelTask:
            return self._cancel(message.id, ctx)
        elif kind is CancelDeadline:
            self._cancel_deadline_passed(message)
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
        elif kind is TaskInfo:
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
        else:
            raise TypeError(f"ControlPlane does not handle {kind.__name__}")
        return None

    # -- submissions ------------------------------------------------------------------
    def _accept(self, msg: Accept) -> None:
        durable: list[tuple[Reply, Any]] = []
        for group, reply, watcher in msg.groups:
            try:
                accepted = self._accept_group(group, watcher)
            except (QueueFull, ShuttingDown, PayloadTooLarge) as exc:
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
            self.journal.tell_nowait(Persist(tasks, durable))

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
            spec = self.registry.lookup(task.name)
            if spec is None:
                sub = Submission(task.id, task.name, task.payload, task.priority)
                self._outcomes.append(self._unknown_task(sub))
                continue
            rec = TaskRecord(task.id, task.name, task.payload, task.priority, spec, now)
            self.tasks[task.id] = rec
            if task.eta is not None and task.eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((task.id, self.clock.to_trio(task.eta)))
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(tasks)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))

    def _accept_group(self, group: list[Submission], watcher: ActorRef | None) -> int:
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
        if len(self.tasks) + len(new) > self.config.max_queue:
            raise QueueFull(
                f"the queue is full ({self.config.max_queue} tasks waiting or running): "
                "retry later, add subworkers, or raise max_queue"
            )
        if watcher is not None and group:
            self._flush_outcomes()
            self.cache.tell_nowait(Subscribe([s.id for s in group], watcher))
        if self.observer is not None:
            self._observed.extend(new)
        now = trio.current_time()
        wall = self.clock.now()
        lookup = self.registry.lookup
        scheduled: list[tuple[str, float]] = []
        for sub in new:
            spec = lookup(sub.name)
            if spec is None:
                self._outcomes.append(self._unknown_task(sub))
                continue
            priority = sub.priority if sub.priority is not None else int(spec.priority)
            rec = TaskRecord(sub.id, sub.name, sub.payload, priority, spec, now)
            self.tasks[sub.id] = rec
            eta = sub.eta if sub.countdown is None else wall + sub.countdown
            if self.journal is not None:
                self._to_journal.append(JournaledTask(sub.id, sub.name, sub.payload, priority, eta))
            if eta is not None and eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((sub.id, self.clock.to_trio(eta)))
                self._event(rec)
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(new)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))
        return len(group)

    def _unknown_task(self, sub: Submission) -> Outcome:
        known = ", ".join(self.registry.names()) or "none"
        self.failed += 1
        return Outcome(
            id=sub.id,
            status=TaskStatus.FAILURE.value,
            attempt=0,
            error=WireError(
                "TaskNotRegistered",
                f"no task named {sub.name!r} is registered (known tasks: {known})",
            ),
            completed_at=self.clock.now(),
            name=sub.name,
        )

    def _enqueue(self, rec: TaskRecord, front: bool = False, now: float | None = None) -> None:
        rec.status = TaskStatus.QUEUED
        if front:
            self.queue.push_front(rec)
        else:
            rec.enqueued_at = trio.current_time() if now is None else now
            self.queue.push(rec)
        if self._event_refs:
            self._event(rec)

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
        spec = self.registry.lookup(tick.name)
        if spec is None:
            return
        task_id = f"{tick.name}@{int(tick.fire_at)}-{next(self._periodic_seq)}"
        rec = TaskRecord(
            task_id, tick.name, b"\x92\x90\x80", int(spec.priority), spec, trio.current_time()
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
        if self.draining or not len(self.queue):
            return
        ready = [w for w in self.workers.values() if w.accepting and w.free > 0]
        if not ready:
            return
        batches: dict[str, list[Run]] = {}
        pop = self.queue.pop
        index = 0
        while ready:
            rec = pop()
            if rec is None:
                break
            worker = ready[index % len(ready)]
            rec.status = TaskStatus.RUNNING
            rec.attempts += 1
            rec.worker = worker.id
            worker.free -= 1
            worker.running.add(rec.id)
            batches.setdefault(worker.id, []).append(
                Run(rec.id, rec.name, rec.payload, rec.attempts, rec.spec.timeout)
            )
            if self._event_refs:
                self._event(rec)
            if worker.free == 0:
                ready.remove(worker)
            else:
                index += 1
        for worker_id, runs in batches.items():
            self.workers[worker_id].ref.tell_nowait(RunTasks(runs))
        if self.observer is not None:
            self._observed_runs.extend(batches.items())

    def _running_count(self) -> int:
        return sum(len(w.running) for w in self.workers.values())

    # -- outcomes ---------------------------------------------------------------------
    def _completed(self, msg: WorkerCompleted) -> None:
        worker = self.workers.get(msg.id)
        if worker is not None:
            worker.free = min(worker.slots, worker.free + msg.credits)
        tasks = self.tasks
        for outcome in msg.outcomes:
            rec = tasks.get(outcome.id)
            if (
                rec is None
                or rec.attempts != outcome.attempt
                or rec.status is not TaskStatus.RUNNING
            ):
                continue  # fenced: a late result of an attempt that no longer counts
            if worker is not None:
                worker.running.discard(rec.id)
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
    def _cancel(self, task_id: str, ctx: Context) -> bool | None:
        """Cancel a task. A running one gets a request, an ack and a bounded wait.

        Queued, scheduled or retrying: removed at once (True). Running: the worker is
        asked to cancel and the answer waits for its confirmation (the task's ``finally``
        has run), at most ``cancel_timeout``; a sync task in a thread cannot be
        interrupted, so past the bound it is marked cancelled and its late result
        discarded.
        """
        rec = self.tasks.get(task_id)
        if rec is None:
            return False
        status = rec.status
        if status is TaskStatus.RUNNING and rec.worker is not None:
            worker = self.workers.get(rec.worker)
            if worker is not None:
                waiting = self._cancelling.get(task_id)
                if waiting is None:
                    self._cancelling[task_id] = [ctx.defer_reply()]
                    worker.ref.tell_nowait(CancelRun(task_id, rec.attempts))
                    ctx.nursery.start_soon(
                        self._cancel_timer, ctx.self, CancelDeadline(task_id, rec.attempts)
                    )
                else:
                    waiting.append(ctx.defer_reply())
                return None
        if status is TaskStatus.QUEUED:
            self.queue.discard()
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
            worker.running.discard(rec.id)
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
        self.workers[msg.id] = WorkerSlot(msg.id, msg.ref, msg.slots, msg.busy, msg.local)
        self._update_local()
        log.info("worker %s joined with %d slots", msg.id, msg.slots)
        if self._event_refs:
            self._events.append(Event("worker", msg.id, "joined", at=self.clock.now()))

    def _worker_left(self, msg: WorkerLeft) -> None:
        worker = self.workers.pop(msg.id, None)
        running = list(msg.running)
        if worker is not None:
            # Work dispatched after the connection took its in-flight snapshot (it was
            # already gone, so the RunTasks was dead-lettered) is lost with it too.
            reported = {task_id for task_id, _ in running}
            running += [
                (task_id, self.tasks[task_id].attempts)
                for task_id in worker.running
                if task_id not in reported and task_id in self.tasks
            ]
        lost = 0
        for task_id, attempt in running:
            rec = self.tasks.get(task_id)
            if rec is None or rec.status is not TaskStatus.RUNNING or rec.attempts != attempt:
                continue
            if rec.worker != msg.id:
                continue
            lost += 1
            if rec.id in self._cancelling:
                self._terminal(
                    rec,
                    TaskStatus.CANCELLED,
                    WireError("TaskCancelled", "cancelled by request (its worker was lost)"),
                )
            elif rec.spec.redeliver:
                self.redelivered += 1
                if self.observer is not None:
                    self._observed_requeued.append((rec.id, rec.name, "redelivered"))
                rec.worker = None
                self._enqueue(rec, front=True)
            else:
                self._terminal(
                    rec,
                    TaskStatus.FAILURE,
                    WireError(
                        "WorkerLost",
                        f"the worker running it ({msg.id}) was lost: {msg.reason or 'gone'}; "
                        "the task opted out of redelivery (redeliver=False)",
                    ),
                )
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

    def _update_local(self) -> None:
        """The local executor takes work only while no subworker is connected."""
        local = self.workers.get(self.config.worker_name)
        if local is not None:
            local.accepting = not any(not w.local and not w.retiring for w in self.workers.values())

    def _watch(self, msg: WatchIds) -> None:
        # Outcomes finished earlier in this batch must reach the cache before the watch.
        self._flush_outcomes()
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
        for rec in self.tasks.values():
            if rec.status is TaskStatus.QUEUED:
                depths[rec.priority] += 1
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
        )
