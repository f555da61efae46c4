"""The sync lane: sync tasks run in worker threads, trivial ones several per hand-off.

Ready sync tasks are handed to a thread several at a time (one hand-off for many trivial
tasks), but a thread returns to the loop after a short time budget, so a slow task never
holds others back for long. A thread cannot be interrupted: a sync task past its timeout
is reported as timed out at once, its late result is discarded, and its slot is freed
only when the thread really returns.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from .._model import TaskStatus
from ._state import Attempt, ExecutorState

THREAD_BUDGET = 0.002
"""Seconds a worker thread may spend on a run of ready sync tasks before returning."""

FAST_TASK = 0.0005
"""A sync task whose average run is shorter than this counts as trivial."""


class SyncLanes(ExecutorState):
    """``concurrency`` lanes, each handing ready sync attempts to a worker thread."""

    async def _sync_lane(self) -> None:
        ready = self._sync_ready
        while True:
            while not ready:
                await self._sync_wake.park()
            # Tasks known to be trivial go to one thread together (one hand-off for
            # many); others get a fair share per lane, so two slow ones run in two
            # threads. A thread returns after THREAD_BUDGET, handing back what it did
            # not start, so a task that turns out slow holds back little.
            cost = self._cost
            if all(cost.get(a.run.name, 1.0) < FAST_TASK for a in ready):
                share = len(ready)
            else:
                share = max(1, len(ready) // self.concurrency)
            taken = [ready.popleft() for _ in range(min(share, len(ready)))]
            if self.threads:
                results = await trio.to_thread.run_sync(
                    _run_many, taken, THREAD_BUDGET, limiter=self._limiter
                )
            else:
                await trio.lowlevel.checkpoint()
                results = _run_many(taken, THREAD_BUDGET)
            for attempt, value, error, seconds in results:
                name = attempt.run.name
                cost[name] = seconds if name not in cost else 0.8 * cost[name] + 0.2 * seconds
                self._sync_done(attempt, value, error)
            # A thread's results are already a batch: report them now, without waiting
            # for the reporter's turn.
            self._flush()
            if len(results) < len(taken):
                ready.extendleft(reversed(taken[len(results) :]))
                self._sync_wake.unpark()

    def _wake_lanes(self) -> None:
        """Wake one idle lane for trivial work, or one per ready task otherwise."""
        ready = self._sync_ready
        if not ready:
            return
        cost = self._cost
        if all(cost.get(a.run.name, 1.0) < FAST_TASK for a in ready):
            self._sync_wake.unpark()
        else:
            self._sync_wake.unpark(count=len(ready))

    def _sync_done(self, attempt: Attempt, value: Any, error: BaseException | None) -> None:
        if self._running.get(attempt.run.id) is not attempt:
            return
        if attempt.timed_out:
            # Reported when it timed out (a periodic task: now); its slot comes back now.
            del self._running[attempt.run.id]
            late = attempt.late_error
            outcome = None
            if late is not None:
                outcome = self._outcome(attempt, TaskStatus.FAILURE, error=late)
            self._emit(outcome, credits=1)
            self._start_deferred(attempt.run.id)
            return
        self._done(attempt, value=value, error=error)
        self._start_deferred(attempt.run.id)

    def _start_deferred(self, task_id: str) -> None:
        if self._deferred:
            run = self._deferred.pop(task_id, None)
            if run is not None and task_id not in self._running:
                self._start(run)
                self._wake_lanes()

    async def _sync_deadline(self, attempt: Attempt) -> None:
        assert attempt.run.timeout is not None
        await trio.sleep(attempt.run.timeout)
        if self._running.get(attempt.run.id) is attempt and not attempt.timed_out:
            if attempt in self._sync_ready:
                self._sync_ready.remove(attempt)
                self._timed_out(attempt)
                self._start_deferred(attempt.run.id)
                return
            attempt.timed_out = True
            self.timed_out += 1
            self.failed += 1
            error = self._timeout_error(
                attempt,
                " (a sync task cannot be interrupted: its thread runs on and its "
                "result will be discarded)",
            )
            self._log_failure(attempt.run.name, attempt.run.id, attempt.run.attempt, error)
            if attempt.spec.periodic:
                # A periodic task never overlaps itself: it counts as running (and its
                # next tick is skipped) until its thread really returns; the timeout is
                # reported then.
                attempt.late_error = error
                return
            self._emit(self._outcome(attempt, TaskStatus.FAILURE, error=error), credits=0)

    def _cancel_waiting_sync(self, attempt: Attempt) -> None:
        if attempt in self._sync_ready:
            self._sync_ready.remove(attempt)
            self._cancelled(attempt)
            self._start_deferred(attempt.run.id)
        # A sync task already in a thread cannot be interrupted; the control plane has
        # already marked it cancelled and will ignore its result.


def _run_many(
    attempts: list[Attempt], budget: float
) -> list[tuple[Attempt, Any, BaseException | None, float]]:
    """In a worker thread: run ready sync attempts until the time budget is spent."""
    results: list[tuple[Attempt, Any, BaseException | None, float]] = []
    clock = time.perf_counter
    started = clock()
    deadline = started + budget
    for attempt in attempts:
        error: BaseException | None
        try:
            value = attempt.spec.func(*attempt.args, **attempt.kwargs)
        except Exception as exc:
            value, error = None, exc
        else:
            error = None
        now = clock()
        results.append((attempt, value, error, now - started))
        started = now
        if now > deadline:
            break
    return results
