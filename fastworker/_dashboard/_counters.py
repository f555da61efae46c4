"""The lifetime counters ``/metrics`` exposes per task name (trio-free).

They count whether or not a task is still in the ring: the ring forgets old tasks, the
counters never do. The number of names is bounded (names come from submitters).
"""

from __future__ import annotations

from bisect import bisect_left

TIME_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram bucket bounds in seconds (run time, queue wait, journal commits)."""

MAX_NAMES = 1000
"""Distinct task names counted for the metrics; later ones count as ``(other)``."""
OTHER_NAMES = "(other)"


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


def counters_of(names: dict[str, NameCounters], name: str) -> NameCounters:
    """The counters of ``name`` in ``names``, made on first use; past ``MAX_NAMES``
    distinct names, the shared ``(other)`` counters."""
    counters = names.get(name)
    if counters is None:
        if len(names) >= MAX_NAMES:
            # Names come from submitters: bound the metric labels they can create.
            name = OTHER_NAMES
            counters = names.get(name)
        if counters is None:
            counters = names[name] = NameCounters()
    return counters
