"""Outcomes: how attempts end (success, failure, timeout, cancellation) and are reported.

Outcomes finished together are reported together (one ``report`` call). Each failed
attempt is logged at WARNING with its traceback, at most one full traceback per task
name per ``FAILURE_LOG_WINDOW`` seconds (then a count).
"""

from __future__ import annotations

from typing import Any

import trio

from .._messages import Outcome, WireError
from .._model import TaskStatus
from .._serialization import pack_result
from ._state import Attempt, ExecutorState, log, wire_error


class Reporting(ExecutorState):
    """Turns finished attempts into outcomes and reports them in batches."""

    def _outcome(
        self,
        attempt: Attempt,
        status: TaskStatus,
        *,
        value: bytes | None = None,
        error: WireError | None = None,
        retryable: bool = False,
    ) -> Outcome:
        run = attempt.run
        return Outcome(
            run.id,
            status.value,
            run.attempt,
            value,
            error,
            attempt.started_at,
            self.clock(),
            self.worker,
            run.name,
            retryable,
        )

    def _done(self, attempt: Attempt, *, value: Any = None, error: BaseException | None = None):
        if self._running.pop(attempt.run.id, None) is None:
            return
        retryable = True
        if error is None:
            try:
                packed = pack_result(value, limit=self.max_result_size)
            except Exception as exc:
                # The same value would fail the same way again: not worth a retry.
                error, retryable = exc, False
            else:
                self.succeeded += 1
                outcome = self._outcome(attempt, TaskStatus.SUCCESS, value=packed)
                self._recent.remember(outcome, trio.current_time())
                self._emit(outcome, credits=1)
                return
        self.failed += 1
        retryable = retryable and isinstance(error, attempt.spec.retry_on)
        wire = wire_error(error)
        self._log_failure(attempt.run.name, attempt.run.id, attempt.run.attempt, wire)
        self._emit(
            self._outcome(attempt, TaskStatus.FAILURE, error=wire, retryable=retryable),
            credits=1,
        )

    def _log_failure(self, name: str, task_id: str, attempt: int, error: WireError) -> None:
        """One WARNING per failed attempt, a full one per name per window (then counted)."""
        suppressed = self.failure_log.admit(name, trio.current_time())
        if suppressed is None:
            return
        note = (
            f" ({suppressed} more failures of {name} not logged in the last "
            f"{self.failure_log.window:g}s)"
            if suppressed
            else ""
        )
        detail = error.traceback.rstrip() or f"{error.type}: {error.message}"
        log.warning(
            "task %s (%s) attempt %d failed on worker %s%s:\n%s",
            name,
            task_id,
            attempt,
            self.worker,
            note,
            detail,
        )

    def _timeout_error(self, attempt: Attempt, note: str = "") -> WireError:
        return WireError(
            "TaskTimeout",
            f"task {attempt.run.name!r} ran past its timeout of {attempt.run.timeout}s{note}",
        )

    def _timed_out(self, attempt: Attempt) -> None:
        if self._running.pop(attempt.run.id, None) is None:
            return
        self.timed_out += 1
        self.failed += 1
        error = self._timeout_error(attempt)
        self._log_failure(attempt.run.name, attempt.run.id, attempt.run.attempt, error)
        self._emit(
            self._outcome(attempt, TaskStatus.FAILURE, error=error, retryable=False),
            credits=1,
        )

    def _cancelled(self, attempt: Attempt) -> None:
        if self._running.pop(attempt.run.id, None) is None:
            return
        self.cancelled += 1
        self._emit(
            self._outcome(
                attempt,
                TaskStatus.CANCELLED,
                error=WireError("TaskCancelled", "cancelled while running"),
            ),
            credits=1,
        )

    def _emit(self, outcome: Outcome | None, credits: int) -> None:
        if outcome is not None:
            self._outcomes.append(outcome)
        self._credits += credits
        self._flush_wake.unpark()

    async def _reporter(self) -> None:
        """Report what async tasks (and timers) emitted: whatever is ready, in one go."""
        while True:
            while not self._outcomes and not self._credits:
                await self._flush_wake.park()
            self._flush()

    def _flush(self) -> None:
        if self._backlog:
            self._fill()
        outcomes, self._outcomes = self._outcomes, []
        credits, self._credits = self._credits, 0
        if outcomes or credits:
            try:
                self.report(outcomes, credits)
            except Exception:
                log.exception("could not report %d outcomes", len(outcomes))
        if self._idle_waiters and not self._running:
            waiters, self._idle_waiters = self._idle_waiters, []
            for reply in waiters:
                reply.resolve(None)
