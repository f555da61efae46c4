"""The ControlPlane actor: the loop, and a table from message type to handler.

It owns every non-terminal task. Terminal outcomes go to the ResultCache; timers go
to the Scheduler; work goes to workers (SubworkerConnections and the local executor)
only for the slots they announced free, so no worker holds a private backlog.

The work itself is done by the parts it is made of, one file each: ``_admission``
(accept, unique keys, restore, durability), ``_dispatch`` (free slots, suspects,
prefetch), ``_outcomes`` (results, retries, fencing), ``_cancellation`` and
``_workers`` (joined, left, lost work), over the state in ``_state``. After each
batch of messages it dispatches once and flushes outcomes and events once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from actors import Actor, Context, Delivery

from .._messages import WireClusterStats, WireQueueStats
from .._model import TaskStatus
from .._protocol import (
    Abandon,
    Accept,
    AcceptFlow,
    BeginDrain,
    CancelDeadline,
    CancelTask,
    Due,
    Durable,
    EventSubscription,
    GetClusterStats,
    NotDurable,
    RateWake,
    Restore,
    RestoreFlows,
    StatusOf,
    Subscribe,
    TaskDetail,
    Tick,
    WaitIdle,
    WatchIds,
    WorkerCompleted,
    WorkerJoined,
    WorkerLeft,
    WorkerRetiring,
)
from ._admission import Admission
from ._cancellation import Cancellation
from ._dispatch import Dispatch
from ._outcomes import Outcomes
from ._workers import Workers

log = logging.getLogger("fastworker.control_plane")

Handler = Callable[["ControlPlane", Context, Any], Any]


class ControlPlane(Admission, Dispatch, Outcomes, Cancellation, Workers, Actor):
    """Owns the queues, the task table, the workers table and dispatch."""

    batch_limit = 4096

    handlers: ClassVar[dict[type, Handler]]
    """What ``receive`` calls for each message type (filled in below the class)."""

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
            self.end_batch(ctx)

    def end_batch(self, ctx: Context) -> None:
        """What follows each batch of messages: settle workflows, dispatch, flush, timers."""
        self.flows.settle()  # members of failed or cancelled workflows
        self._dispatch()
        self._flush()
        self._wake_for_rate_limits(ctx)

    async def receive(self, ctx: Context, message: Any) -> Any:
        """Dispatch on the message type (see ``handlers``)."""
        handler = self.handlers.get(type(message))
        if handler is None:
            raise TypeError(f"ControlPlane does not handle {type(message).__name__}")
        return handler(self, ctx, message)

    def _flush(self) -> None:
        self._flush_outcomes()
        self.events.flush()
        if self._idle_waiters and not self.pool.running_count():
            waiters, self._idle_waiters = self._idle_waiters, []
            for reply in waiters:
                reply.resolve(None)

    # -- handlers that are not a part's own ---------------------------------------------
    def _on_durable(self, ctx: Context, msg: Durable) -> None:
        self._durable(msg.ids)
        if self.flows:
            self.flows.durable(msg.ids)

    def _on_not_durable(self, ctx: Context, msg: NotDurable) -> None:
        self._not_durable(msg)
        if self.flows:
            self.flows.not_durable(msg.ids, msg.reason)

    def _on_restore(self, ctx: Context, msg: Restore) -> None:
        for info in msg.known:  # already in the journal: remembered, not re-written
            if self.registry.lookup(info.name) is None:
                self.announced[info.name] = info
        self._restore(msg.tasks, msg.done)

    def _on_status_of(self, ctx: Context, msg: StatusOf) -> Any:
        rec = self.tasks.get(msg.id)
        if rec is None and self.flows:
            return self.flows.status(msg.id)
        return rec.status.value if rec is not None else None

    def _on_cancel_task(self, ctx: Context, msg: CancelTask) -> bool | None:
        answer = self._cancel(msg.id, ctx, msg.reply)
        if msg.reply is None:
            return answer
        if answer is not None:
            msg.reply.resolve(answer)
        return None

    def _on_worker_retiring(self, ctx: Context, msg: WorkerRetiring) -> None:
        self.pool.retire(msg.id)

    def _on_event_subscription(self, ctx: Context, msg: EventSubscription) -> None:
        if msg.enabled:
            self.events.subscribe(msg.ref)
        else:
            self.events.unsubscribe(msg.ref)

    def _on_task_detail(self, ctx: Context, msg: TaskDetail) -> dict[str, Any] | None:
        rec = self.tasks.get(msg.id)
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

    def _on_begin_drain(self, ctx: Context, msg: BeginDrain) -> int:
        self.draining = True
        return self.pool.running_count()

    def _on_wait_idle(self, ctx: Context, msg: WaitIdle) -> None:
        if self.pool.running_count():
            self._idle_waiters.append(ctx.defer_reply())

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

    # -- statistics -------------------------------------------------------------------
    def statistics(self, results_cached: int = 0) -> WireClusterStats:
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
        pool = self.pool.statistics()
        return WireClusterStats(
            queued=WireQueueStats(*depths),
            scheduled=scheduled,
            running=pool.running,
            workers=pool.workers,
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


def _rate_wake(cp: ControlPlane, ctx: Context, msg: RateWake) -> None:
    """Nothing to do: ``handle_batch`` dispatches after every batch."""


ControlPlane.handlers = {
    WorkerCompleted: lambda cp, ctx, m: cp._completed(m),
    RateWake: _rate_wake,
    Accept: lambda cp, ctx, m: cp._accept(m),
    Durable: ControlPlane._on_durable,
    NotDurable: ControlPlane._on_not_durable,
    Due: lambda cp, ctx, m: cp._due(m.ids),
    Restore: ControlPlane._on_restore,
    Tick: lambda cp, ctx, m: cp._tick(m),
    WatchIds: lambda cp, ctx, m: cp._watch(m),
    StatusOf: ControlPlane._on_status_of,
    CancelTask: ControlPlane._on_cancel_task,
    CancelDeadline: lambda cp, ctx, m: cp._cancel_deadline_passed(m),
    AcceptFlow: lambda cp, ctx, m: cp.flows.accept(m),
    RestoreFlows: lambda cp, ctx, m: cp.flows.restore(m.flows),
    WorkerJoined: lambda cp, ctx, m: cp._worker_joined(m),
    WorkerLeft: lambda cp, ctx, m: cp._worker_left(m),
    WorkerRetiring: ControlPlane._on_worker_retiring,
    EventSubscription: ControlPlane._on_event_subscription,
    GetClusterStats: lambda cp, ctx, m: cp.statistics(m.results_cached),
    TaskDetail: ControlPlane._on_task_detail,
    BeginDrain: ControlPlane._on_begin_drain,
    WaitIdle: ControlPlane._on_wait_idle,
    Abandon: lambda cp, ctx, m: cp._abandon(m.reason),
}
