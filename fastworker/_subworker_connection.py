"""The SubworkerConnection actor: the control plane's side of one connected subworker.

It forwards work to the subworker's executor over the link, keeps the in-flight table,
and when the link goes down (closed, or heartbeats missed) hands every in-flight task
back to the control plane, then stops.
"""

from __future__ import annotations

import logging
from typing import Any

from actors import Actor, ActorRef, Context, LinkDown, Peer

from ._control_plane import WorkerCompleted, WorkerJoined, WorkerLeft, WorkerRetiring
from ._messages import CancelRun, Completed, Reclaim, Retire, RunTasks

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
        self.prefetch = prefetch
        self.in_flight: dict[str, int] = {}

    async def started(self, ctx: Context) -> None:
        """Watch the link and announce the worker's slots."""
        ctx.system.monitor_peers(ctx.self)
        await self.control_plane.tell(
            WorkerJoined(
                self.worker_id,
                ctx.self,
                self.slots,
                self.busy,
                prefetch=self.prefetch,
                # Work goes straight to the executor over the link (one hop less); the
                # control plane's table of what runs where is the in-flight record.
                runs_to=self.executor,
            )
        )
        if not self.peer.connected:
            self._leave(ctx, "the link dropped during registration")

    async def receive(self, ctx: Context, message: Any) -> Any:
        """RunTasks, CancelRun, Reclaim from the control plane; Completed from the subworker."""
        kind = type(message)
        if kind is RunTasks:
            for run in message.runs:
                self.in_flight[run.id] = run.attempt
            self.executor.tell_nowait(message)
        elif kind is Completed:
            in_flight = self.in_flight
            for outcome in message.outcomes:
                if in_flight.get(outcome.id) == outcome.attempt:
                    del in_flight[outcome.id]
            returned = [(run.id, run.attempt) for run in message.returned]
            for task_id, attempt in returned:
                if in_flight.get(task_id) == attempt:
                    del in_flight[task_id]
            self.control_plane.tell_nowait(
                WorkerCompleted(self.worker_id, message.outcomes, message.credits, returned)
            )
        elif kind is CancelRun:
            self.in_flight.pop(message.id, None)
            self.executor.tell_nowait(message)
        elif kind is Reclaim:
            self.executor.tell_nowait(message)
        elif kind is Retire:
            await self.control_plane.ask(WorkerRetiring(self.worker_id))
        elif kind is LinkDown:
            if message.node_id == self.node_id:
                self._leave(ctx, message.reason)
        return None

    def _leave(self, ctx: Context, reason: str) -> None:
        ctx.system.demonitor_peers(ctx.self)
        running = list(self.in_flight.items())
        self.in_flight.clear()
        self.control_plane.tell_nowait(WorkerLeft(self.worker_id, running, reason))
        ctx.stop()
