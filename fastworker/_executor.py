"""The Executor actor: runs task attempts and reports their outcomes in batches.

- ``async def`` tasks run in the trio loop, each in its own cancel scope (timeout and
  cancellation interrupt them; their ``finally`` blocks run).
- Sync tasks run in worker threads. Ready sync tasks are handed to a thread several
  at a time (one hand-off for many trivial tasks), but a thread returns to the loop
  after a short time budget, so a slow task never holds others back for long.
  A thread cannot be interrupted: a sync task past its timeout is reported as timed
  out at once, its late result is discarded, and its slot is freed only when the thread
  really returns.
- Outcomes finished together are reported together (one ``Completed``).
- With ``prefetch``, up to that many attempts wait beyond the slots in a local backlog,
  started in priority order (then arrival) as slots free up, so a slot never waits a
  round trip to the control plane between two tasks. Unstarted attempts go back
  (``give_back``) when the executor drains or the control plane reclaims those less
  urgent than work waiting for a slot, and are dropped when the link is lost (the
  control plane re-queues them then).
- A redelivered attempt of a task still running here (the link dropped and came back)
  does not start a second run: the running one adopts the new attempt number, so its
  outcome counts. One whose old run was already reported (timed out, cancelled) starts
  when the old run's thread lets go of the task.
- A success is remembered for a while (bounded): a redelivered attempt of a task that
  already succeeded here (its report was lost with the link) is answered with that
  result under the new attempt number instead of running again.
- Each failed attempt is logged at WARNING with its traceback, at most one full
  traceback per task name per ``FAILURE_LOG_WINDOW`` seconds (then a count).
"""

from __future__ import annotations

import heapq
import logging
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from itertools import count
from typing import Any

import attrs
import trio

from actors import Actor, Context

from ._messages import CancelRun, Drain, Outcome, Reclaim, Run, RunTasks, WireError
from ._model import TaskStatus
from ._registry import Registry, TaskSpec, check_arguments
from ._serialization import DEFAULT_MAX_PAYLOAD, pack_result, unpack_arguments

log = logging.getLogger("fastworker.executor")

Report = Callable[[list[Outcome], int], None]
GiveBack = Callable[[list[Run]], None]

THREAD_BUDGET = 0.002
"""Seconds a worker thread may spend on a run of ready sync tasks before returning."""

FAST_TASK = 0.0005
"""A sync task whose average run is shorter than this counts as trivial."""

RECENT_ENTRIES = 1024
RECENT_BYTES = 32 * 1024 * 1024
RECENT_TTL = 300.0
"""Successes kept for redelivered attempts: at most this many, bytes, seconds."""

FAILURE_LOG_WINDOW = 60.0
"""Seconds between two full failure tracebacks logged for the same task name."""


class FailureLog:
    """Rate limit for failure logs: one full entry per task name per ``window`` seconds.

    ``admit(name, now)`` answers None (suppress) or how many failures of that name were
    suppressed since the last full entry.
    """

    def __init__(self, window: float = FAILURE_LOG_WINDOW, max_names: int = 10_000) -> None:
        self.window = window
        self.max_names = max_names
        self._last: dict[str, tuple[float, int]] = {}
        self.logged = 0
        self.suppressed = 0

    def admit(self, name: str, now: float) -> int | None:
        """None to suppress this failure, else the count suppressed before it."""
        entry = self._last.get(name)
        if entry is not None and now - entry[0] < self.window:
            self._last[name] = (entry[0], entry[1] + 1)
            self.suppressed += 1
            return None
        if entry is None and len(self._last) >= self.max_names:
            self._last.clear()  # many distinct names: forget, rather than grow
        self._last[name] = (now, 0)
        self.logged += 1
        return entry[1] if entry is not None else 0


@attrs.frozen
class ExecutorStatistics:
    """Slots, running attempts and lifetime counters."""

    concurrency: int
    running: int
    started: int
    succeeded: int
    failed: int
    cancelled: int
    timed_out: int
    adopted: int = 0
    """Redelivered attempts that took over the run still in progress here."""
    reused: int = 0
    """Redelivered attempts answered with the success this worker already had."""


class _Attempt:
    __slots__ = (
        "args",
        "cancel_requested",
        "kwargs",
        "late_error",
        "run",
        "scope",
        "spec",
        "started_at",
        "timed_out",
    )

    def __init__(self, run: Run, spec: TaskSpec, args: list[Any], kwargs: dict[str, Any]):
        self.run = run
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.scope: trio.CancelScope | None = None
        self.started_at = 0.0
        self.timed_out = False
        self.cancel_requested = False
        self.late_error: WireError | None = None
        """A periodic sync task's timeout, reported when its thread returns."""


def _error(exc: BaseException, tb: bool = True) -> WireError:
    text = "".join(traceback.format_exception(exc)) if tb else ""
    return WireError(type(exc).__name__, str(exc), text)


class Executor(Actor):
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
        self._running: dict[str, _Attempt] = {}
        self._sync_ready: deque[_Attempt] = deque()
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
        self._recent: OrderedDict[str, tuple[Outcome, float]] = OrderedDict()
        self._recent_bytes = 0
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
            less = [item for item in self._backlog if item[0] > message.priority]
            if less:
                self._backlog = [item for item in self._backlog if item[0] <= message.priority]
                heapq.heapify(self._backlog)
                self._return([run for _, _, run in sorted(less)])
            return None
        if isinstance(message, Drain):
            self._draining = True
            if self._backlog:
                backlog, self._backlog = self._backlog, []
                self._return([run for _, _, run in sorted(backlog)])
            if self._running:
                self._idle_waiters.append(ctx.defer_reply())
            return None
        raise TypeError(f"Executor does not handle {type(message).__name__}")

    # -- the prefetch backlog ----------------------------------------------------------
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
            self._finish_early(run, now, _error(exc, tb=False))
            return
        attempt = _Attempt(run, spec, args, kwargs)
        attempt.started_at = now
        self._running[run.id] = attempt
        assert self._nursery is not None
        if spec.is_async:
            self._nursery.start_soon(self._run_async, attempt)
        else:
            self._sync_ready.append(attempt)
            if attempt.run.timeout is not None:
                self._nursery.start_soon(self._sync_deadline, attempt)

    def _redelivered(self, current: _Attempt, run: Run) -> None:
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
        entry = self._recent.pop(run.id, None)
        if entry is None:
            return False
        outcome, _ = entry
        self._recent_bytes -= len(outcome.value or b"")
        if outcome.attempt >= run.attempt:
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

    def _remember(self, outcome: Outcome) -> None:
        size = len(outcome.value or b"")
        if size > RECENT_BYTES // 4:
            return
        recent = self._recent
        now = trio.current_time()
        previous = recent.pop(outcome.id, None)
        if previous is not None:
            self._recent_bytes -= len(previous[0].value or b"")
        recent[outcome.id] = (outcome, now + RECENT_TTL)
        self._recent_bytes += size
        while recent:
            task_id, (old, expires) = next(iter(recent.items()))
            if (
                len(recent) <= RECENT_ENTRIES
                and self._recent_bytes <= RECENT_BYTES
                and expires > now
            ):
                break
            del recent[task_id]
            self._recent_bytes -= len(old.value or b"")

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

    # -- async tasks ------------------------------------------------------------------
    async def _run_async(self, attempt: _Attempt) -> None:
        try:
            await self._step_async(attempt)
        finally:
            self._start_deferred(attempt.run.id)

    @staticmethod
    def attempt_code() -> Any:
        """The code object of the frame that runs an async attempt (its local ``attempt``
        names it): how the loop watchdog tells which task holds the loop."""
        return Executor._step_async.__code__

    async def _step_async(self, attempt: _Attempt) -> None:
        run = attempt.run
        with trio.CancelScope() as scope:
            attempt.scope = scope
            if run.timeout is not None:
                scope.relative_deadline = run.timeout
            try:
                value = await attempt.spec.func(*attempt.args, **attempt.kwargs)
            except Exception as exc:
                self._done(attempt, error=exc)
                return
            self._done(attempt, value=value)
            return
        # The scope swallowed a Cancelled: a cancel request, or else its deadline.
        if attempt.cancel_requested:
            self._cancelled(attempt)
        else:
            self._timed_out(attempt)

    # -- sync tasks -------------------------------------------------------------------
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

    def _sync_done(self, attempt: _Attempt, value: Any, error: BaseException | None) -> None:
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

    async def _sync_deadline(self, attempt: _Attempt) -> None:
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

    def _cancel_waiting_sync(self, attempt: _Attempt) -> None:
        if attempt in self._sync_ready:
            self._sync_ready.remove(attempt)
            self._cancelled(attempt)
            self._start_deferred(attempt.run.id)
        # A sync task already in a thread cannot be interrupted; the control plane has
        # already marked it cancelled and will ignore its result.

    # -- outcomes ---------------------------------------------------------------------
    def _outcome(
        self,
        attempt: _Attempt,
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

    def _done(self, attempt: _Attempt, *, value: Any = None, error: BaseException | None = None):
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
                self._remember(outcome)
                self._emit(outcome, credits=1)
                return
        self.failed += 1
        retryable = retryable and isinstance(error, attempt.spec.retry_on)
        wire = _error(error)
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

    def _timeout_error(self, attempt: _Attempt, note: str = "") -> WireError:
        return WireError(
            "TaskTimeout",
            f"task {attempt.run.name!r} ran past its timeout of {attempt.run.timeout}s{note}",
        )

    def _timed_out(self, attempt: _Attempt) -> None:
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

    def _cancelled(self, attempt: _Attempt) -> None:
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


def _run_many(
    attempts: list[_Attempt], budget: float
) -> list[tuple[_Attempt, Any, BaseException | None, float]]:
    """In a worker thread: run ready sync attempts until the time budget is spent."""
    results: list[tuple[_Attempt, Any, BaseException | None, float]] = []
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
