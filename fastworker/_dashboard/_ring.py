"""The dashboard's ring of recent task summaries, bounded by count and bytes (trio-free).

``RecentTasks`` is fed what the control plane reports (accepted submissions, attempts
dispatched, retries and redeliveries, terminal outcomes) and keeps one entry per task
(``_summary``), oldest evicted first, so the page shows history without unbounded
memory. It also counts per task name what ``/metrics`` exposes (``_counters``), whether
or not the task is still in the ring. Reading it is ``RingQueries`` (``_ring_queries``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from typing import Any

from .._messages import Outcome, Run, Submission, WireError
from ._counters import TIME_BUCKETS, NameCounters, counters_of
from ._ring_queries import RingQueries
from ._summary import (
    _ATTEMPTS,
    _NAME,
    _OUTCOME,
    _QUEUED,
    _SIZE,
    _STARTED,
    _STATUS,
    _UPDATED,
    _WORKER,
    new_entry,
)

DEFAULT_RECENT_TASKS = 10_000
"""Task summaries kept for the page (oldest dropped first)."""
DEFAULT_RECENT_BYTES = 16 * 1024 * 1024
"""Byte budget of the summaries (arguments kept for retry count against it)."""
DEFAULT_KEEP_ARGUMENTS = 64 * 1024
"""Packed arguments up to this size are kept (for the preview and for retry)."""
MAX_TRACEBACK = 16 * 1024
"""Longer tracebacks keep their last part."""

_OVERHEAD = 400  # rough bytes per summary beyond ids, arguments and error text


class RecentTasks(RingQueries):
    """The bounded ring of recent task summaries, and per-name counters.

    ``max_entries`` and ``max_bytes`` bound the ring (the oldest submission goes first);
    arguments up to ``keep_arguments`` packed bytes are kept with their task, so the
    page can preview them and retry a failed task with the same arguments.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_RECENT_TASKS,
        max_bytes: int = DEFAULT_RECENT_BYTES,
        keep_arguments: int = DEFAULT_KEEP_ARGUMENTS,
        changes: int = 1024,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the recent-task ring needs max_entries and max_bytes >= 1")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.keep_arguments = keep_arguments
        self._tasks: dict[str, list[Any]] = {}
        self._order: deque[str] = deque()  # ids, oldest first (cheaper than OrderedDict)
        self.bytes = 0
        self.evicted = 0
        self.names: dict[str, NameCounters] = {}
        self.changes: deque[str] = deque(maxlen=changes)
        self.change_count = 0
        """How many changes ever; ``changes`` holds the ids of the last ones."""

    # -- feeding ----------------------------------------------------------------------
    def _evict(self) -> None:
        tasks = self._tasks
        order = self._order
        while len(tasks) > self.max_entries or (self.bytes > self.max_bytes and len(tasks) > 1):
            old = tasks.pop(order.popleft(), None)
            if old is not None:
                self.bytes -= old[_SIZE]
                self.evicted += 1

    # The loops below are the hot path of the dashboard (every task passes through
    # them): locals, list entries, one counters lookup per run of equal names,
    # eviction once per batch.

    def submitted(self, submissions: Iterable[Submission], at: float) -> None:
        """Tasks the control plane accepted (with their packed arguments)."""
        tasks = self._tasks
        keep = self.keep_arguments
        append = self.changes.append
        order = self._order.append
        added = grown = 0
        last_name = None
        counters: Any = None
        for sub in submissions:
            name = sub.name
            if name != last_name:
                counters = counters_of(self.names, name)
                last_name = name
            counters.submitted += 1
            task_id = sub.id
            if task_id in tasks:
                continue
            if (sub.countdown is not None and sub.countdown > 0) or (
                sub.eta is not None and sub.eta > at
            ):
                status = "scheduled"
            else:
                status = "queued"
            size = len(sub.payload)
            if size <= keep:
                size += _OVERHEAD + len(task_id)
                entry = [sub, name, status, at, None, None, at, 0, None, None, size, 0]
            else:
                entry = [None, name, status, at, None, None, at, 0, None, None, _OVERHEAD, size]
                size = _OVERHEAD
            if status == "queued":
                entry[_QUEUED] = at
            tasks[task_id] = entry
            order(task_id)
            grown += size
            append(task_id)
            added += 1
        self.bytes += grown
        self.change_count += added
        self._evict()

    def dispatched(self, worker: str, runs: Iterable[Run], at: float) -> None:
        """Attempts sent to ``worker``."""
        get = self._tasks.get
        append = self.changes.append
        last_name = None
        counters: Any = None
        changed = 0
        for run in runs:
            name = run.name
            if name != last_name:
                counters = counters_of(self.names, name)
                last_name = name
            counters.started += 1
            entry = get(run.id)
            if entry is None or entry[_OUTCOME] is not None:
                continue  # dropped from the ring already: its counters still count
            queued = entry[_QUEUED]
            if queued is not None:
                wait = counters.queue_wait
                value = at - queued if at > queued else 0.0
                wait.counts[bisect_left(TIME_BUCKETS, value)] += 1
                wait.sum += value
                entry[_QUEUED] = None
            entry[_STATUS] = "running"
            entry[_ATTEMPTS] = run.attempt
            entry[_WORKER] = worker
            entry[_STARTED] = entry[_UPDATED] = at
            append(run.id)
            changed += 1
        self.change_count += changed

    def requeued(self, items: Iterable[tuple[str, str, str]], at: float) -> None:
        """(id, name, why): "retry" (backing off), "redelivered" (its worker was lost,
        queued again), "periodic" (a new run of a periodic task, queued) or "refused"
        (the journal could not record it: it is forgotten)."""
        tasks = self._tasks
        for task_id, name, why in items:
            counters = counters_of(self.names, name)
            entry = tasks.get(task_id)
            if why == "refused":
                # Never accepted after all (the journal failed): the submitter was told.
                if entry is not None and entry[_OUTCOME] is None:
                    del tasks[task_id]
                    self.bytes -= entry[_SIZE]
                    self._changed(task_id)
                continue
            if why == "periodic":
                counters.submitted += 1
                if entry is None:
                    entry = tasks[task_id] = new_entry(None, name, "queued", at, _OVERHEAD)
                    self._order.append(task_id)
                    self.bytes += _OVERHEAD
                    self._evict()
            elif why == "retry":
                counters.retried += 1
            else:
                counters.redelivered += 1
            if entry is None or entry[_OUTCOME] is not None:
                continue
            entry[_STATUS] = "retrying" if why == "retry" else "queued"
            entry[_QUEUED] = None if why == "retry" else at
            entry[_UPDATED] = at
            self._changed(task_id)

    def _changed(self, task_id: str) -> None:
        self.changes.append(task_id)
        self.change_count += 1

    def outcomes(self, outcomes: Iterable[Outcome], at: float) -> None:
        """Terminal outcomes (with error, traceback and timings)."""
        tasks = self._tasks
        append = self.changes.append
        last_name = None
        counters: Any = None
        changed = grown = 0
        for outcome in outcomes:
            task_id = outcome.id
            entry = tasks.get(task_id)
            if entry is not None and entry[_OUTCOME] is not None:
                continue
            name = entry[_NAME] if entry is not None else outcome.name
            if name != last_name:
                counters = counters_of(self.names, name)
                last_name = name
            status = outcome.status
            if status == "success":
                counters.succeeded += 1
            elif status == "cancelled":
                counters.cancelled += 1
            else:
                counters.failed += 1
            started = outcome.started_at
            completed = outcome.completed_at
            if started is not None and completed is not None:
                run_time = counters.run_time
                value_s = completed - started if completed > started else 0.0
                run_time.counts[bisect_left(TIME_BUCKETS, value_s)] += 1
                run_time.sum += value_s
            if entry is None and status == "success":
                continue  # dropped while it waited (a burst): only failures come back
            grow = 0
            value = outcome.value
            error = outcome.error
            if value is not None:
                if len(value) > 256 or (error is not None and len(error.traceback) > MAX_TRACEBACK):
                    outcome = self._trimmed(outcome)
                    error = outcome.error
                else:
                    grow += len(value)
            if error is not None:
                if len(error.traceback) > MAX_TRACEBACK:
                    outcome = self._trimmed(outcome)
                    error = outcome.error
                grow += len(error.message) + len(error.traceback)  # type: ignore[union-attr]
            if entry is None:
                entry = tasks[task_id] = new_entry(None, name, status, at, _OVERHEAD + grow)
                self._order.append(task_id)
                grow += _OVERHEAD
            else:
                entry[_SIZE] += grow
                entry[_STATUS] = status
            grown += grow
            entry[_OUTCOME] = outcome
            if outcome.attempt > entry[_ATTEMPTS]:
                entry[_ATTEMPTS] = outcome.attempt
            if entry[_WORKER] is None:
                entry[_WORKER] = outcome.worker  # else the worker id it was dispatched to
            if started:
                entry[_STARTED] = started
            entry[_UPDATED] = completed or at
            append(task_id)
            changed += 1
        self.bytes += grown
        self.change_count += changed
        self._evict()

    @staticmethod
    def _trimmed(outcome: Outcome) -> Outcome:
        """Without its value (the cache has it) and with at most MAX_TRACEBACK of trace."""
        error = outcome.error
        if error is not None and len(error.traceback) > MAX_TRACEBACK:
            error = WireError(error.type, error.message, "...\n" + error.traceback[-MAX_TRACEBACK:])
        return Outcome(
            outcome.id,
            outcome.status,
            outcome.attempt,
            None,
            error,
            outcome.started_at,
            outcome.completed_at,
            outcome.worker,
            outcome.name,
        )
