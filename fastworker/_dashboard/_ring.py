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
    """What the page shows of one task.

    It holds the accepted ``Submission`` (for the arguments) and the terminal
    ``Outcome`` (error, times) themselves rather than copies of their fields: feeding
    the ring costs the control plane's process as little as possible per task.
    """

    __slots__ = (
        "attempts",
        "id",
        "name",
        "outcome",
        "queued_at",
        "size",
        "started_at",
        "status",
        "sub",
        "submitted_at",
        "too_big",
        "updated_at",
        "worker",
    )

    def __init__(
        self, id: str, name: str, status: str, at: float, sub: Submission | None = None
    ) -> None:
        self.id = id
        self.name = name
        self.status = status
        self.sub = sub
        self.submitted_at = self.updated_at = at
        self.queued_at: float | None = None
        self.started_at: float | None = None
        self.attempts = 0
        self.worker: str | None = None
        self.outcome: Outcome | None = None
        self.too_big = 0  # size of arguments not kept
        self.size = _OVERHEAD

    @property
    def terminal(self) -> bool:
        """True for success, failure and cancelled."""
        return self.status in TERMINAL

    @property
    def payload(self) -> bytes | None:
        """The packed arguments, if kept."""
        return self.sub.payload if self.sub is not None else None

    @property
    def priority(self) -> int | None:
        """The priority asked for at submission (None: the task's default)."""
        return self.sub.priority if self.sub is not None else None

    @property
    def error(self) -> WireError | None:
        """Why it failed or was cancelled."""
        return self.outcome.error if self.outcome is not None else None

    @property
    def completed_at(self) -> float | None:
        """When it finished (POSIX time)."""
        return self.outcome.completed_at if self.outcome is not None else None


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

    def _evict(self) -> None:
        tasks = self._tasks
        while len(tasks) > self.max_entries or (self.bytes > self.max_bytes and len(tasks) > 1):
            _, old = tasks.popitem(last=False)
            self.bytes -= old.size
            self.evicted += 1

    def _add(self, summary: TaskSummary) -> None:
        self._tasks[summary.id] = summary
        self.bytes += summary.size
        self._evict()

    def _changed(self, task_id: str) -> None:
        self.changes.append(task_id)
        self.change_count += 1

    # The loops below are the hot path of the dashboard (every task passes through
    # them): locals, one counters lookup per run of equal names, eviction per batch.

    def submitted(self, submissions: Iterable[Submission], at: float) -> None:
        """Tasks the control plane accepted (with their packed arguments)."""
        tasks = self._tasks
        keep = self.keep_arguments
        changes = self.changes
        added = 0
        last_name = None
        counters = None
        for sub in submissions:
            name = sub.name
            if name != last_name:
                counters = self._counters(name)
                last_name = name
            counters.submitted += 1  # type: ignore[union-attr]
            task_id = sub.id
            if task_id in tasks:
                continue
            later = (sub.countdown is not None and sub.countdown > 0) or (
                sub.eta is not None and sub.eta > at
            )
            size = len(sub.payload)
            if size <= keep:
                summary = TaskSummary(task_id, name, "scheduled" if later else "queued", at, sub)
                summary.size += size + len(task_id)
            else:
                summary = TaskSummary(task_id, name, "scheduled" if later else "queued", at)
                summary.too_big = size
            if not later:
                summary.queued_at = at
            tasks[task_id] = summary
            self.bytes += summary.size
            changes.append(task_id)
            added += 1
        self.change_count += added
        self._evict()

    def dispatched(self, worker: str, runs: Iterable[Run], at: float) -> None:
        """Attempts sent to ``worker``."""
        tasks = self._tasks
        changes = self.changes
        last_name = None
        counters = None
        changed = 0
        for run in runs:
            name = run.name
            if name != last_name:
                counters = self._counters(name)
                last_name = name
            counters.started += 1  # type: ignore[union-attr]
            summary = tasks.get(run.id)
            if summary is None or summary.outcome is not None:
                continue  # dropped from the ring already: its counters still count
            if summary.queued_at is not None:
                counters.queue_wait.observe(at - summary.queued_at)  # type: ignore[union-attr]
                summary.queued_at = None
            summary.status = "running"
            summary.attempts = run.attempt
            summary.worker = worker
            summary.started_at = summary.updated_at = at
            changes.append(run.id)
            changed += 1
        self.change_count += changed

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
        changes = self.changes
        last_name = None
        counters = None
        changed = 0
        for outcome in outcomes:
            task_id = outcome.id
            summary = tasks.get(task_id)
            if summary is not None and summary.outcome is not None:
                continue
            name = summary.name if summary is not None else outcome.name
            if name != last_name:
                counters = self._counters(name)
                last_name = name
            status = outcome.status
            if status == "success":
                counters.succeeded += 1  # type: ignore[union-attr]
            elif status == "cancelled":
                counters.cancelled += 1  # type: ignore[union-attr]
            else:
                counters.failed += 1  # type: ignore[union-attr]
            started = outcome.started_at
            completed = outcome.completed_at
            if started is not None and completed is not None:
                counters.run_time.observe(completed - started)  # type: ignore[union-attr]
            grow = 0
            value = outcome.value
            error = outcome.error
            if (value is not None and len(value) > 256) or (
                error is not None and len(error.traceback) > MAX_TRACEBACK
            ):
                # The ring keeps no big values (the cache has them) nor endless tracebacks.
                if error is not None and len(error.traceback) > MAX_TRACEBACK:
                    error = WireError(
                        error.type, error.message, "...\n" + error.traceback[-MAX_TRACEBACK:]
                    )
                outcome = Outcome(
                    task_id,
                    status,
                    outcome.attempt,
                    None,
                    error,
                    started,
                    completed,
                    outcome.worker,
                    outcome.name,
                )
            elif value is not None:
                grow += len(value)
            if error is not None:
                grow += len(error.message) + len(error.traceback)
            if summary is None:
                if status == "success":
                    continue  # dropped while it waited (a burst): only failures come back
                summary = TaskSummary(task_id, name, status, at)
                summary.size += grow + len(task_id)
                summary.outcome = outcome
                self._add(summary)
            else:
                summary.outcome = outcome
                summary.size += grow
                self.bytes += grow
            summary.status = status
            if outcome.attempt > summary.attempts:
                summary.attempts = outcome.attempt
            if outcome.worker and summary.worker is None:
                summary.worker = outcome.worker  # else the worker id it was dispatched to
            if started:
                summary.started_at = started
            summary.updated_at = completed or at
            changes.append(task_id)
            changed += 1
        self.change_count += changed

    def statistics(self) -> dict[str, Any]:
        """Entries, bytes and limits."""
        return {
            "entries": len(self._tasks),
            "bytes": self.bytes,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
            "evicted": self.evicted,
        }
