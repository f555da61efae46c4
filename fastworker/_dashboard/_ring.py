"""Recent task summaries for the dashboard, bounded by count and bytes (trio-free).

``RecentTasks`` is fed what the control plane reports (accepted submissions, attempts
dispatched, retries and redeliveries, terminal outcomes) and keeps one ``TaskSummary``
per task, oldest evicted first, so the page shows history without unbounded memory.
It also counts per task name what ``/metrics`` exposes (submitted, started, succeeded,
... and two histograms), whether or not the task is still in the ring.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from typing import Any

from .._messages import Outcome, Run, Submission, WireError

DEFAULT_RECENT_TASKS = 10_000
"""Task summaries kept for the page (oldest dropped first)."""
DEFAULT_RECENT_BYTES = 16 * 1024 * 1024
"""Byte budget of the summaries (arguments kept for retry count against it)."""
DEFAULT_KEEP_ARGUMENTS = 64 * 1024
"""Packed arguments up to this size are kept (for the preview and for retry)."""
MAX_TRACEBACK = 16 * 1024
"""Longer tracebacks keep their last part."""

MAX_NAMES = 1000
"""Distinct task names counted for the metrics; later ones count as ``(other)``."""
OTHER_NAMES = "(other)"

_OVERHEAD = 400  # rough bytes per summary beyond ids, arguments and error text
TERMINAL = frozenset({"success", "failure", "cancelled"})

TIME_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram bucket bounds in seconds (run time, queue wait, journal commits)."""


class TaskSummary:
    """What the page shows of one task."""

    __slots__ = (
        "attempts",
        "completed_at",
        "error",
        "id",
        "name",
        "payload",
        "priority",
        "queued_at",
        "size",
        "started_at",
        "status",
        "submitted_at",
        "too_big",
        "updated_at",
        "worker",
    )

    def __init__(self, id: str, name: str, status: str, at: float) -> None:
        self.id = id
        self.name = name
        self.status = status
        self.priority: int | None = None
        self.submitted_at = at
        self.queued_at: float | None = None
        self.started_at: float | None = None
        self.completed_at: float | None = None
        self.updated_at = at
        self.attempts = 0
        self.worker: str | None = None
        self.payload: bytes | None = None
        self.too_big = 0  # size of arguments not kept
        self.error: WireError | None = None
        self.size = _OVERHEAD + len(id) + len(name)

    @property
    def terminal(self) -> bool:
        """True for success, failure and cancelled."""
        return self.status in TERMINAL


class Histogram:
    """Cumulative-ready bucket counts and a sum (Prometheus histogram semantics)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(TIME_BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (negative values, from clock steps, count as 0)."""
        value = max(0.0, value)
        self.counts[bisect_left(TIME_BUCKETS, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """(upper bound, cumulative count) pairs ending with +Inf."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*map(str, TIME_BUCKETS), "+Inf"), self.counts, strict=True):
            total += count
            out.append((bound, float(total)))
        return out


class NameCounters:
    """Lifetime counters of one task name."""

    __slots__ = (
        "cancelled",
        "failed",
        "queue_wait",
        "redelivered",
        "retried",
        "run_time",
        "started",
        "submitted",
        "succeeded",
    )

    def __init__(self) -> None:
        self.submitted = self.started = self.succeeded = self.failed = 0
        self.cancelled = self.retried = self.redelivered = 0
        self.run_time = Histogram()
        self.queue_wait = Histogram()


class RecentTasks:
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
        self._tasks: OrderedDict[str, TaskSummary] = OrderedDict()
        self.bytes = 0
        self.evicted = 0
        self.names: dict[str, NameCounters] = {}
        self.changes: deque[str] = deque(maxlen=changes)
        self.change_count = 0
        """How many changes ever; ``changes`` holds the ids of the last ones."""

    # -- reading ----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tasks)

    def get(self, task_id: str) -> TaskSummary | None:
        """The summary of a task, or None if it was never seen or was dropped."""
        return self._tasks.get(task_id)

    def recent(
        self, *, status: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[TaskSummary]:
        """Newest first, filtered by exact status and by name (substring)."""
        out: list[TaskSummary] = []
        for summary in reversed(self._tasks.values()):
            if status and summary.status != status:
                continue
            if name and name not in summary.name:
                continue
            out.append(summary)
            if len(out) >= limit:
                break
        return out

    def changed_since(self, seen: int, limit: int = 100) -> tuple[int, list[TaskSummary]]:
        """Summaries changed after change number ``seen`` (newest first, each once)."""
        fresh = min(self.change_count - seen, len(self.changes))
        out: list[TaskSummary] = []
        ids: set[str] = set()
        for index in range(len(self.changes) - 1, len(self.changes) - 1 - fresh, -1):
            task_id = self.changes[index]
            if task_id in ids:
                continue
            ids.add(task_id)
            summary = self._tasks.get(task_id)
            if summary is not None:
                out.append(summary)
                if len(out) >= limit:
                    break
        return self.change_count, out

    def __iter__(self) -> Iterator[TaskSummary]:
        return iter(self._tasks.values())

    # -- feeding ----------------------------------------------------------------------
    def _counters(self, name: str) -> NameCounters:
        counters = self.names.get(name)
        if counters is None:
            if len(self.names) >= MAX_NAMES:
                # Names come from submitters: bound the metric labels they can create.
                name = OTHER_NAMES
                counters = self.names.get(name)
            if counters is None:
                counters = self.names[name] = NameCounters()
        return counters

    def _add(self, summary: TaskSummary) -> None:
        self._tasks[summary.id] = summary
        self.bytes += summary.size
        tasks = self._tasks
        while len(tasks) > self.max_entries or (self.bytes > self.max_bytes and len(tasks) > 1):
            _, old = tasks.popitem(last=False)
            self.bytes -= old.size
            self.evicted += 1

    def _changed(self, task_id: str) -> None:
        self.changes.append(task_id)
        self.change_count += 1

    def submitted(self, submissions: Iterable[Submission], at: float) -> None:
        """Tasks the control plane accepted (with their packed arguments)."""
        tasks = self._tasks
        keep = self.keep_arguments
        for sub in submissions:
            self._counters(sub.name).submitted += 1
            if sub.id in tasks:
                continue
            later = (sub.countdown is not None and sub.countdown > 0) or (
                sub.eta is not None and sub.eta > at
            )
            summary = TaskSummary(sub.id, sub.name, "scheduled" if later else "queued", at)
            if not later:
                summary.queued_at = at
            summary.priority = sub.priority
            if len(sub.payload) <= keep:
                summary.payload = sub.payload
                summary.size += len(sub.payload)
            else:
                summary.too_big = len(sub.payload)
            self._add(summary)
            self._changed(sub.id)

    def dispatched(self, worker: str, runs: Iterable[Run], at: float) -> None:
        """Attempts sent to ``worker``."""
        tasks = self._tasks
        for run in runs:
            counters = self._counters(run.name)
            counters.started += 1
            summary = tasks.get(run.id)
            if summary is None or summary.terminal:
                continue  # dropped from the ring already: its counters still count
            if summary.queued_at is not None:
                counters.queue_wait.observe(at - summary.queued_at)
                summary.queued_at = None
            summary.status = "running"
            summary.attempts = run.attempt
            summary.worker = worker
            summary.started_at = summary.updated_at = at
            self._changed(run.id)

    def requeued(self, items: Iterable[tuple[str, str, str]], at: float) -> None:
        """(id, name, why): "retry" (backing off), "redelivered" (its worker was lost,
        queued again) or "periodic" (a new run of a periodic task, queued)."""
        tasks = self._tasks
        for task_id, name, why in items:
            counters = self._counters(name)
            summary = tasks.get(task_id)
            if why == "periodic":
                counters.submitted += 1
                if summary is None:
                    summary = TaskSummary(task_id, name, "queued", at)
                    self._add(summary)
            elif why == "retry":
                counters.retried += 1
            else:
                counters.redelivered += 1
            if summary is None or summary.terminal:
                continue
            summary.status = "retrying" if why == "retry" else "queued"
            summary.queued_at = None if why == "retry" else at
            summary.updated_at = at
            self._changed(task_id)

    def outcomes(self, outcomes: Iterable[Outcome], at: float) -> None:
        """Terminal outcomes (with error, traceback and timings)."""
        tasks = self._tasks
        for outcome in outcomes:
            summary = tasks.get(outcome.id)
            if summary is None:
                summary = TaskSummary(outcome.id, outcome.name, outcome.status, at)
                self._add(summary)
            elif summary.terminal:
                continue
            counters = self._counters(summary.name or outcome.name)
            status = outcome.status
            if status == "success":
                counters.succeeded += 1
            elif status == "cancelled":
                counters.cancelled += 1
            else:
                counters.failed += 1
            if outcome.started_at is not None and outcome.completed_at is not None:
                counters.run_time.observe(outcome.completed_at - outcome.started_at)
            summary.status = status
            summary.attempts = max(summary.attempts, outcome.attempt)
            summary.worker = outcome.worker or summary.worker
            summary.started_at = outcome.started_at or summary.started_at
            summary.completed_at = outcome.completed_at or at
            summary.updated_at = summary.completed_at
            error = outcome.error
            if error is not None:
                if len(error.traceback) > MAX_TRACEBACK:
                    error = WireError(
                        error.type, error.message, "...\n" + error.traceback[-MAX_TRACEBACK:]
                    )
                grow = len(error.message) + len(error.traceback)
                summary.error = error
                summary.size += grow
                self.bytes += grow
            self._changed(outcome.id)

    def statistics(self) -> dict[str, Any]:
        """Entries, bytes and limits."""
        return {
            "entries": len(self._tasks),
            "bytes": self.bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            "evicted": self.evicted,
        }
