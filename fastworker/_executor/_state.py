"""The executor's shared state: an attempt, the statistics, and what every part may use."""

from __future__ import annotations

import logging
import traceback
from collections import deque
from collections.abc import Callable
from itertools import count
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._messages import Outcome, Run, WireError
from .._model import TaskStatus
from .._registry import Registry, TaskSpec
from ._memory import FailureLog, RecentSuccesses

log = logging.getLogger("fastworker.executor")

Report = Callable[[list[Outcome], int], None]
GiveBack = Callable[[list[Run]], None]


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


class Attempt:
    """One attempt held by the executor: its run, its task, its arguments, its fate."""

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


def wire_error(exc: BaseException, tb: bool = True) -> WireError:
    """An exception as it travels in an outcome (with its traceback unless ``tb=False``)."""
    text = "".join(traceback.format_exception(exc)) if tb else ""
    return WireError(type(exc).__name__, str(exc), text)


class ExecutorState:
    """The state the executor's parts share (set up by ``Executor.__init__``)."""

    registry: Registry
    concurrency: int
    report: Report
    worker: str
    max_result_size: int
    clock: Callable[[], float]
    threads: bool
    prefetch: int
    failure_log: FailureLog
    _running: dict[str, Attempt]
    _sync_ready: deque[Attempt]
    _sync_wake: trio.lowlevel.ParkingLot
    _outcomes: list[Outcome]
    _credits: int
    _flush_wake: trio.lowlevel.ParkingLot
    _nursery: trio.Nursery | None
    _limiter: trio.CapacityLimiter
    _cost: dict[str, float]
    _idle_waiters: list[Any]
    _give_back: GiveBack | None
    _backlog: list[tuple[int, int, Run]]  # heap: (priority, arrival, run)
    _arrival: count[int]
    _draining: bool
    _deferred: dict[str, Run]
    _recent: RecentSuccesses
    runs_started: int
    succeeded: int
    failed: int
    cancelled: int
    timed_out: int
    adopted: int
    reused: int

    if TYPE_CHECKING:
        # Defined by one part, called by others.
        def _start(self, run: Run) -> None: ...
        def _start_deferred(self, task_id: str) -> None: ...
        def _wake_lanes(self) -> None: ...
        def _fill(self) -> None: ...
        def _flush(self) -> None: ...
        def _emit(self, outcome: Outcome | None, credits: int) -> None: ...
        def _outcome(
            self,
            attempt: Attempt,
            status: TaskStatus,
            *,
            value: bytes | None = None,
            error: WireError | None = None,
            retryable: bool = False,
        ) -> Outcome: ...
        def _done(
            self, attempt: Attempt, *, value: Any = None, error: BaseException | None = None
        ) -> None: ...
        def _log_failure(self, name: str, task_id: str, attempt: int, error: WireError) -> None: ...
        def _timeout_error(self, attempt: Attempt, note: str = "") -> WireError: ...
        def _timed_out(self, attempt: Attempt) -> None: ...
        def _cancelled(self, attempt: Attempt) -> None: ...
