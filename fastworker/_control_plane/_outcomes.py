"""Outcomes: results from workers, fencing, retries, a task's end, and the drain's abandon."""

from __future__ import annotations

import logging
import random

import attrs
import trio

from .._messages import Outcome, WireError
from .._model import TaskStatus
from .._protocol import ScheduleAt, Store, WorkerCompleted
from ._records import TaskRecord
from ._state import ControlPlaneState

log = logging.getLogger("fastworker.control_plane")


class Outcomes(ControlPlaneState):
    """Ends tasks: a worker's outcomes, retries, terminal states, and their flush."""

    def _completed(self, msg: WorkerCompleted) -> None:
        worker = self.pool.credit(msg)
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
                worker.finished(rec.id)
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
        worker = self.pool.get(msg.id)
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
        self.tasks.end(rec)
        if self._cancelling.waiting:
            # A cancel was waiting: it succeeded if the task ended cancelled.
            self._cancelling.end(rec.id, outcome.status == TaskStatus.CANCELLED.value)
        if outcome.status == "success":
            self.completed += 1
        else:
            self.failed += 1
        if not outcome.name:
            outcome = attrs.evolve(outcome, name=rec.name)
        self._outcomes.append(outcome)
        if self.events.subscribers:
            self.events.task_ended(rec.id, outcome.status, rec.name, outcome.worker)
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

    def _abandon(self, reason: str) -> tuple[int, int]:
        running = waiting = 0
        self.draining = True
        for rec in list(self.tasks.values()):
            if rec.status is TaskStatus.RUNNING:
                running += 1
                if self.journal is None:
                    self.pool.release(rec.worker, rec.id)
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

    def _flush_outcomes(self) -> None:
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            self.cache.tell_nowait(Store(outcomes))
            self.journal_notes.finished(outcomes)
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
