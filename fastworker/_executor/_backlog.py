"""The prefetch backlog: attempts waiting beyond the slots, started in priority order.

Unstarted attempts go back (``give_back``) when the executor drains or the control
plane reclaims those less urgent than work waiting for a slot, and are dropped when the
link is lost (the control plane re-queues them then).
"""

from __future__ import annotations

import heapq

from .._messages import CancelRun, Outcome, Run, WireError
from .._model import TaskStatus
from ._state import ExecutorState, log


class Backlog(ExecutorState):
    """The executor's prefetch backlog (a heap of (priority, arrival, run))."""

    def _take(self, runs: list[Run]) -> None:
        """Queue runs in the backlog, start what free slots allow, give back the excess."""
        backlog = self._backlog
        arrival = self._arrival
        for run in runs:
            heapq.heappush(backlog, (run.priority, next(arrival), run))
        self._fill()
        if self._draining and backlog:
            # Sent before the control plane knew we retire: it runs elsewhere.
            self._backlog = []
            self._return([run for _, _, run in sorted(backlog)])

    def _fill(self) -> None:
        """Start backlog runs, most urgent first, while slots are free."""
        backlog = self._backlog
        started = False
        while backlog and len(self._running) < self.concurrency:
            self._start(heapq.heappop(backlog)[2])
            started = True
        if started:
            self._wake_lanes()

    def _reclaim(self, priority: int) -> None:
        """Give back the backlog runs less urgent than ``priority``."""
        less = [item for item in self._backlog if item[0] > priority]
        if less:
            self._backlog = [item for item in self._backlog if item[0] <= priority]
            heapq.heapify(self._backlog)
            self._return([run for _, _, run in sorted(less)])

    def _give_back_all(self) -> None:
        """Give back the whole backlog (the executor drains)."""
        if self._backlog:
            backlog, self._backlog = self._backlog, []
            self._return([run for _, _, run in sorted(backlog)])

    def _return(self, runs: list[Run]) -> None:
        if runs and self._give_back is not None:
            try:
                self._give_back(runs)
            except Exception:
                log.exception("could not give back %d unstarted attempts", len(runs))

    def drop_backlog(self) -> int:
        """Forget unstarted attempts (the link is lost: the control plane re-queues them)."""
        dropped = len(self._backlog)
        self._backlog = []
        return dropped

    @property
    def backlog(self) -> int:
        """Attempts waiting in the prefetch backlog."""
        return len(self._backlog)

    def _cancel_backlogged(self, message: CancelRun) -> None:
        for item in self._backlog:
            run = item[2]
            if run.id == message.id and run.attempt == message.attempt:
                self._backlog.remove(item)
                heapq.heapify(self._backlog)
                self.cancelled += 1
                now = self.clock()
                self._emit(
                    Outcome(
                        run.id,
                        TaskStatus.CANCELLED.value,
                        run.attempt,
                        None,
                        WireError("TaskCancelled", "cancelled before it started"),
                        None,
                        now,
                        self.worker,
                        run.name,
                        False,
                    ),
                    credits=1,
                )
                return
