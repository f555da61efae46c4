"""The SubworkerConnection actor: the control plane's side of one connected subworker.

It forwards work to the subworker's executor over the link, keeps the in-flight table,
and when the link goes down (closed, or heartbeats missed) hands every in-flight task
back to the control plane, then stops.
"""

from __future__ import annotations

import logging
from typing import Any

from actors import (
    Actor,
    ActorError,
    ActorRef,
    Context,
    LinkDown,
    MessageTooLarge,
    Peer,
    PeerDown,
)

from ._messages import (
    CancelRun,
    Completed,
    Outcome,
    Reclaim,
    Retire,
    Run,
    RunTasks,
    TaskInfo,
    WireError,
)
from ._model import TaskStatus
from ._protocol import WorkerCompleted, WorkerJoined, WorkerLeft, WorkerRetiring
from ._wire import Sender, run_size, run_tasks

log = logging.getLogger("fastworker.subworker_connection")


class SubworkerConnection(Actor):
    """One per registered subworker; named ``worker/<id>``."""

    batch_limit = 4096

    def __init__(
        self,
        peer: Peer,
        worker_id: str,
        executor: str,
        control_plane: ActorRef,
        slots: int,
        busy: int = 0,
        tasks: list[str] | None = None,
        queues: list[str] | None = None,
        infos: list[TaskInfo] | None = None,
        *,
        prefetch: int = 0,
    ) -> None:
        self.peer = peer
        self.node_id = peer.node_id
        self.worker_id = worker_id
        self.executor = peer.ref(executor)
        self.control_plane = control_plane
        self.slots = slots
        self.busy = busy
        self.tasks = tasks
        self.queues = queues
        self.infos = infos or []
        self.prefetch = prefetch
        self.in_flight: dict[str, int] = {}
        # Runs are split to fit the link's frames and wait for room in its outbox; a
        # run too big for the subworker's link fails with PayloadTooLarge.
        self._runs: Sender[Run] = Sender(
            "runs", run_tasks, run_size, self._undeliverable, on_lost=self._runs_lost
        )

    async def started(self, ctx: Context) -> None:
        """Watch the link and announce the worker's slots."""
        self._runs.start(ctx.nursery)
        ctx.system.monitor_peers(ctx.self)
        await self.control_plane.tell(
            WorkerJoined(
                self.worker_id,
                ctx.self,
                self.slots,
                self.busy,
                tasks=self.tasks,
                queues=self.queues,
                infos=self.infos,
                prefetch=self.prefetch,
                # Runs go straight to the executor over the link (one hop less) when they
                # fit; the rest come through here (split to fit frames, as before).
                runs_to=self.executor,
            )
        )
        if not self.peer.connected:
            await self._leave(ctx, "the link dropped during registration")

    async def receive(self, ctx: Context, message: Any) -> Any:
        """RunTasks, CancelRun, Reclaim from the control plane; Completed from the subworker."""
        kind = type(message)
        if kind is RunTasks:
            for run in message.runs:
                self.in_flight[run.id] = run.attempt
            self._runs.send_nowait(self.executor, message.runs)
        elif kind is Completed:
            in_flight = self.in_flight
            for outcome in message.outcomes:
                if in_flight.get(outcome.id) == outcome.attempt:
                    del in_flight[outcome.id]
            returned = [(run.id, run.attempt) for run in message.returned]
            for task_id, attempt in returned:
                if in_flight.get(task_id) == attempt:
                    del in_flight[task_id]
            # Waits for room: a full control-plane mailbox must not crash this actor
            # (the outcomes, and with them the worker's slots, would be lost for good).
            await self.control_plane.tell(
                WorkerCompleted(self.worker_id, message.outcomes, message.credits, returned)
            )
        elif kind is CancelRun:
            self.in_flight.pop(message.id, None)
            try:
                self.executor.tell_nowait(message)
            except ActorError as exc:
                log.warning(
                    "cancel of %s not sent to worker %s: %s", message.id, self.worker_id, exc
                )
        elif kind is Reclaim:
            try:
                self.executor.tell_nowait(message)
            except ActorError as exc:  # the link is going: its backlog is re-queued anyway
                log.debug("reclaim not sent to worker %s: %s", self.worker_id, exc)
        elif kind is Retire:
            await self.control_plane.ask(WorkerRetiring(self.worker_id))
        elif kind is LinkDown:
            if message.node_id == self.node_id:
                await self._leave(ctx, message.reason)
        return None

    def _undeliverable(self, run: Run, exc: Exception) -> None:
        """A run the subworker's link cannot take fails with PayloadTooLarge."""
        if self.in_flight.get(run.id) == run.attempt:
            del self.in_flight[run.id]
            self._fail(
                run,
                WireError(
                    "PayloadTooLarge",
                    f"the arguments of task {run.name} ({len(run.payload)} bytes) could not "
                    f"be sent to worker {self.worker_id}: {exc}; pass a reference instead "
                    "of the data",
                ),
            )

    def _runs_lost(self, ref: ActorRef, runs: list[Run], exc: Exception) -> None:
        # The link is down (LinkDown hands these back for redelivery) or the message
        # could not be encoded at all: then nothing would ever report them.
        if isinstance(exc, MessageTooLarge):
            return  # failed with PayloadTooLarge by _undeliverable
        if isinstance(exc, PeerDown):
            log.info("%d runs not sent to worker %s: %s", len(runs), self.worker_id, exc)
            return
        log.error("%d runs not sent to worker %s: %s", len(runs), self.worker_id, exc)
        for run in runs:
            if self.in_flight.get(run.id) == run.attempt:
                del self.in_flight[run.id]
                self._fail(run, WireError(type(exc).__name__, f"could not be sent: {exc}"))

    def _fail(self, run: Run, error: WireError) -> None:
        outcome = Outcome(run.id, TaskStatus.FAILURE.value, run.attempt, None, error, name=run.name)
        self.control_plane.tell_nowait(WorkerCompleted(self.worker_id, [outcome], 1))

    async def _leave(self, ctx: Context, reason: str) -> None:
        ctx.system.demonitor_peers(ctx.self)
        running = list(self.in_flight.items())
        self.in_flight.clear()
        # Waits for room, as Completed does: these tasks are redelivered only from here.
        await self.control_plane.tell(WorkerLeft(self.worker_id, running, reason))
        ctx.stop()
