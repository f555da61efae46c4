"""The worker table: workers joining, retiring and leaving, and tasks lost with them."""

from __future__ import annotations

import logging

from .._messages import WireError
from .._model import TaskStatus
from .._protocol import WorkerJoined, WorkerLeft
from .._records import WorkerStatus
from .._routing import WorkerCapabilities
from ._records import TaskRecord
from ._state import ControlPlaneState

log = logging.getLogger("fastworker.control_plane")


class Workers(ControlPlaneState):
    """Keeps the worker table; redelivers or quarantines what a lost worker ran."""

    def _worker_joined(self, msg: WorkerJoined) -> None:
        old = self.pool.get(msg.id)
        if old is not None:
            self._worker_left(
                WorkerLeft(
                    msg.id,
                    [(i, self.tasks[i].attempts) for i in old.running if i in self.tasks],
                    "replaced",
                )
            )
        self.pool.join(
            msg.id,
            msg.ref,
            msg.slots,
            busy=msg.busy,
            local=msg.local,
            prefetch=msg.prefetch,
            runs_to=msg.runs_to,
        )
        if msg.tasks is not None:
            self._announce(msg.infos, msg.tasks)
        self.queue.set_worker(
            msg.id,
            WorkerCapabilities(
                None if msg.tasks is None else frozenset(msg.tasks),
                None if msg.queues is None else frozenset(msg.queues),
            ),
        )
        log.info("worker %s joined with %d slots", msg.id, msg.slots)
        self.events.worker_changed(msg.id, WorkerStatus.JOINED.value)

    def _worker_left(self, msg: WorkerLeft) -> None:
        slot = self.pool.workers.get(msg.id)
        retired = slot is not None and slot.retiring
        in_flight = self.pool.leave(msg.id)
        self.queue.remove_worker(msg.id)
        running = list(msg.running)
        if in_flight is not None:
            # Work dispatched after the connection took its in-flight snapshot (it was
            # already gone, so the RunTasks was dead-lettered) is lost with it too. Runs
            # go straight to a subworker's executor, so its connection's in-flight table
            # does not list them: the order tasks were accepted stands in for dispatch's.
            reported = {task_id for task_id, _ in running}
            running += [
                (task_id, self.tasks[task_id].attempts)
                for task_id in self.tasks.in_accept_order(in_flight)
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
        self.journal_notes.lost(losses)
        if in_flight is not None and retired and not lost:
            # A drained worker going away (Ctrl-C, a rolling restart): nothing to warn about.
            log.info("worker %s retired and left (%s)", msg.id, msg.reason or "gone")
        elif in_flight is not None:
            log.warning(
                "worker %s left (%s); %d tasks in flight handled",
                msg.id,
                msg.reason or "gone",
                lost,
            )
        self.events.worker_changed(msg.id, WorkerStatus.LEFT.value)

    def _worker_lost_error(self, rec: TaskRecord, msg: WorkerLeft) -> WireError:
        return WireError(
            "WorkerLost",
            f"task {rec.name!r} took down its worker {rec.losses} times (the last: worker "
            f"{msg.id}, {msg.reason or 'gone'}; it ran alone there, so it is the cause): it "
            "is not run again. A task that kills its process (a crash in a C extension, "
            "running out of memory, os._exit) or blocks its event loop fails this way; "
            "max_worker_losses sets how many losses a task may cause",
        )
