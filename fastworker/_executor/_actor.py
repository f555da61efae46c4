"""The Executor actor: takes runs, starts attempts, answers redeliveries and drains.

- A redelivered attempt of a task still running here (the link dropped and came back)
  does not start a second run: the running one adopts the new attempt number, so its
  outcome counts. One whose old run was already reported (timed out, cancelled) starts
  when the old run's thread lets go of the task.
- A success is remembered for a while (bounded): a redelivered attempt of a task that
  already succeeded here (its report was lost with the link) is answered with that
  result under the new attempt number instead of running again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import Any

import attrs
import trio

from actors import Actor, Context

from .._messages import CancelRun, Drain, Outcome, Reclaim, Run, RunTasks, WireError
from .._model import TaskStatus
from .._registry import Registry, check_arguments
from .._serialization import DEFAULT_MAX_PAYLOAD, unpack_arguments
from ._async import AsyncRunner
from ._backlog import Backlog
from ._memory import FailureLog, RecentSuccesses
from ._reporting import Reporting
from ._state import Attempt, ExecutorStatistics, GiveBack, Report, log, wire_error
from ._sync import SyncLanes


class Executor(AsyncRunner, SyncLanes, Backlog, Reporting, Actor):
    """Runs attempts with at most ``concurrency`` at once; calls ``report`` with outcomes.

    ``report(outcomes, credits)`` is how results leave: the local executor tells the
    control plane, a subworker sends them over its link. ``worker`` names this worker in
    outcomes.

    ``threads=False`` runs sync tasks in the event loop instead of worker threads: only
    for tests under a virtual clock, where a thread lets virtual time run away.
    """

    batch_limit = 4096

    def __init__(
        self,
        registry: Registry,
        concurrency: int,
        report: Report,
        worker: str,
        *,
        max_result_size: int = DEFAULT_MAX_PAYLOAD,
        clock: Callable[[], float] = time.time,
        threads: bool = True,
        prefetch: int = 0,
        give_back: GiveBack | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.registry = registry
        self.concurrency = concurrency
        self.report = report
        self.worker = worker
        self.max_result_size = max_result_size
        self.clock = clock
        self.threads = threads
        self._running: dict[str, Attempt] = {}
        self._sync_ready: deque[Attempt] = deque()
        self._sync_wake = trio.lowlevel.ParkingLot()
        self._outcomes: list[Outcome] = []
        self._credits = 0
        self._flush_wake = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._limiter = trio.CapacityLimiter(concurrency)
        self._cost: dict[str, float] = {}
        self._idle_waiters: list[Any] = []
        self.prefetch = prefetch if give_back is not None else 0
        self._give_back = give_back
        self._backlog: list[tuple[int, int, Run]] = []  # heap: (priority, arrival, run)
        self._arrival = count()
        self._draining = False
        # Redelivered attempts waiting for an earlier run of the same task to let go.
        self._deferred: dict[str, Run] = {}
        self.failure_log = FailureLog()
        self._recent = RecentSuccesses()
        self.runs_started = self.succeeded = self.failed = self.cancelled = self.timed_out = 0
        self.adopted = self.reused = 0

    def statistics(self) -> ExecutorStatistics:
        """Slots, running attempts and counters."""
        return ExecutorStatistics(
            self.concurrency,
            len(self._running),
            self.runs_started,
            self.succeeded,
            self.failed,
            self.cancelled,
            self.timed_out,
            self.adopted,
            self.reused,
        )

    @property
    def busy(self) -> int:
        """Attempts holding a slot (running, or timed out with their thread still busy)."""
        return len(self._running)

    async def started(self, ctx: Context) -> None:
        """Start the reporter and the sync lanes."""
        self._nursery = ctx.nursery
        ctx.nursery.start_soon(self._reporter)
        for _ in range(self.concurrency):
            ctx.nursery.start_soon(self._sync_lane)

    async def receive(self, ctx: Context, message: Any) -> Any:
        """RunTasks, CancelRun, Reclaim, Drain."""
        if isinstance(message, RunTasks):
            if not self.prefetch:
                for run in message.runs:
                    self._start(run)
            else:
                self._take(message.runs)
            self._wake_lanes()
            return None
        if isinstance(message, CancelRun):
            attempt = self._running.get(message.id)
            if attempt is None and self._backlog:
                self._cancel_backlogged(message)
            elif attempt is not None and attempt.run.attempt == message.attempt:
                attempt.cancel_requested = True
                if attempt.scope is not None:
                    attempt.scope.cancel()
                else:
                    self._cancel_waiting_sync(attempt)
            return None
        if isinstance(message, Reclaim):
            self._reclaim(message.priority)
            return None
        if isinstance(message, Drain):
            self._draining = True
            self._give_back_all()
            if self._running:
                self._idle_waiters.append(ctx.defer_reply())
            return None
        raise TypeError(f"Executor does not handle {type(message).__name__}")

    # -- starting ---------------------------------------------------------------------
    def _start(self, run: Run) -> None:
        current = self._running.get(run.id)
        if current is not None:
            self._redelivered(current, run)
            return
        if self._recent and self._reuse(run):
            return
        self.runs_started += 1
        spec = self.registry.lookup(run.name)
        now = self.clock()
        if spec is None:
            known = ", ".join(self.registry.names()) or "none"
            self._finish_early(
                run,
                now,
                WireError(
                    "TaskNotRegistered",
                    f"no task named {run.name!r} is registered on worker {self.worker} "
                    f"(known tasks: {known})",
                ),
            )
            return
        try:
            args, kwargs = unpack_arguments(run.payload)
            check_arguments(spec, args, kwargs)
        except Exception as exc:
            self._finish_early(run, now, wire_error(exc, tb=False))
            return
        attempt = Attempt(run, spec, args, kwargs)
        attempt.started_at = now
        self._running[run.id] = attempt
        assert self._nursery is not None
        if spec.is_async:
            self._nursery.start_soon(self._run_async, attempt)
        else:
            self._sync_ready.append(attempt)
            if attempt.run.timeout is not None:
                self._nursery.start_soon(self._sync_deadline, attempt)

    def _redelivered(self, current: Attempt, run: Run) -> None:
        """A newer attempt of a task that is still here (the control plane lost sight of it)."""
        if run.attempt <= current.run.attempt:
            return  # the same dispatch twice: it runs once
        if current.timed_out or current.cancel_requested:
            # The old run was already reported; its thread still holds the task. The new
            # attempt starts once it lets go (the slot the control plane gave it waits).
            self._deferred[run.id] = run
            return
        # Run it once: the running attempt takes the new number, so its outcome counts.
        # The control plane counted that run busy when we re-registered and gave the new
        # attempt a slot of its own: that second slot comes back now.
        log.info(
            "task %s (%s) is still running here: attempt %d continues as attempt %d",
            run.name,
            run.id,
            current.run.attempt,
            run.attempt,
        )
        current.run = run
        self.adopted += 1
        self._emit(None, credits=1)

    def _reuse(self, run: Run) -> bool:
        """Answer a redelivered attempt of a task that already succeeded here."""
        outcome = self._recent.take(run.id)
        if outcome is None or outcome.attempt >= run.attempt:
            return False
        log.info(
            "task %s (%s) already succeeded here as attempt %d: reported again as attempt %d",
            run.name,
            run.id,
            outcome.attempt,
            run.attempt,
        )
        self.reused += 1
        self._emit(attrs.evolve(outcome, attempt=run.attempt), credits=1)
        return True

    def _finish_early(self, run: Run, now: float, error: WireError) -> None:
        self.failed += 1
        self._log_failure(run.name, run.id, run.attempt, error)
        self._emit(
            Outcome(
                run.id,
                TaskStatus.FAILURE.value,
                run.attempt,
                None,
                error,
                now,
                now,
                self.worker,
                run.name,
                False,
            ),
            credits=1,
        )
