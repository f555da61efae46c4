"""Cancellation: removing a waiting task, or asking a worker and waiting (bounded)."""

from __future__ import annotations

import trio

from actors import ActorRef, Context, Reply

from .._messages import CancelRun, WireError
from .._model import TaskStatus
from .._protocol import CancelDeadline, Unschedule
from ._state import ControlPlaneState


class Cancellation(ControlPlaneState):
    """Cancels tasks; a running one gets a request, an ack and a bounded wait."""

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
            worker = self.pool.get(rec.worker)
            if worker is not None:
                deferred = None if quiet else (reply if reply is not None else ctx.defer_reply())
                if self._cancelling.begin(task_id, deferred):
                    worker.ref.tell_nowait(CancelRun(task_id, rec.attempts))
                    ctx.nursery.start_soon(
                        self._cancel_timer, ctx.self, CancelDeadline(task_id, rec.attempts)
                    )
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
        self.pool.release(rec.worker, rec.id)
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
