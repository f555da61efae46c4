"""``/metrics``: the Prometheus text exposition of the control plane.

Counters are lifetime counts since the control plane started, by task name; gauges
are read from one statistics snapshot per scrape; times are in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from ._counters import Histogram
from ._ring import RecentTasks

PRIORITIES = ("critical", "high", "normal", "low")

_COUNTERS = (
    ("submitted", "Tasks accepted by the control plane."),
    ("started", "Attempts started on a worker."),
    ("succeeded", "Tasks that ended in success."),
    ("failed", "Tasks that ended in failure (after their retries)."),
    ("cancelled", "Tasks that ended cancelled."),
    ("retried", "Failed attempts scheduled to run again."),
    ("redelivered", "Attempts handed to another worker after theirs was lost."),
)


def _histogram(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    family.add_metric(labels, histogram.buckets(), histogram.sum)


class _Snapshot:
    """What ``generate_latest`` needs: an object whose ``collect()`` yields metrics."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def collect(
    stats: dict[str, Any],
    cache: Any,
    ring: RecentTasks,
    journal_commits: Histogram | None,
    dashboard_cpu: float = 0.0,
) -> list[Metric]:
    """Every fastworker_* metric family for one scrape.

    ``stats`` is ``ClusterStats`` as a dict (optional fields are used when present:
    ``waiting``, ``suspects``, ``quarantined``, ``queues``), ``cache`` the result cache
    statistics.
    """
    out: list[Metric] = []
    names = sorted(ring.names.items())
    for field, text in _COUNTERS:
        family = CounterMetricFamily(f"fastworker_tasks_{field}", text, labels=["task"])
        for name, counters in names:
            family.add_metric([name], getattr(counters, field))
        out.append(family)
    depth = GaugeMetricFamily(
        "fastworker_queue_depth",
        "Tasks queued, by priority and queue.",
        labels=["priority", "queue"],
    )
    queues = stats.get("queues")
    if isinstance(queues, dict) and queues and all(isinstance(v, dict) for v in queues.values()):
        for queue, by_priority in sorted(queues.items()):
            for priority in PRIORITIES:
                depth.add_metric([priority, str(queue)], float(by_priority.get(priority, 0)))
    else:
        for priority in PRIORITIES:
            depth.add_metric([priority, "default"], float(stats["queued"][priority]))
    out.append(depth)
    out.append(
        GaugeMetricFamily(
            "fastworker_tasks_scheduled",
            "Tasks waiting for their time (countdown, eta, retry backoff).",
            value=stats["scheduled"],
        )
    )
    out.append(
        GaugeMetricFamily(
            "fastworker_tasks_running", "Attempts running now.", value=stats["running"]
        )
    )
    waiting = stats.get("waiting")
    if isinstance(waiting, dict):
        waiting_family = GaugeMetricFamily(
            "fastworker_tasks_waiting_for_worker",
            "Queued tasks no connected worker can run, by task name.",
            labels=["task"],
        )
        for name, count in sorted(waiting.items()):
            waiting_family.add_metric([str(name)], float(count))
        out.append(waiting_family)
    if isinstance(stats.get("suspects"), int):
        out.append(
            GaugeMetricFamily(
                "fastworker_tasks_suspect",
                "Tasks waiting to be redelivered alone (in flight on a lost worker).",
                value=stats["suspects"],
            )
        )
    if isinstance(stats.get("quarantined"), int):
        out.append(
            CounterMetricFamily(
                "fastworker_tasks_quarantined",
                "Tasks failed with WorkerLost because they kept taking down their workers.",
                value=stats["quarantined"],
            )
        )
    workers = stats["workers"]
    out.append(GaugeMetricFamily("fastworker_workers", "Connected workers.", value=len(workers)))
    out.append(
        GaugeMetricFamily(
            "fastworker_worker_slots",
            "Slots of all workers.",
            value=sum(w["slots"] for w in workers),
        )
    )
    out.append(
        GaugeMetricFamily(
            "fastworker_worker_slots_free",
            "Free slots of all workers.",
            value=sum(w["free"] for w in workers),
        )
    )
    out.append(
        GaugeMetricFamily(
            "fastworker_draining", "1 while the control plane drains.", value=int(stats["draining"])
        )
    )
    run_time = HistogramMetricFamily(
        "fastworker_task_run_seconds", "Run time of finished tasks' last attempt.", labels=["task"]
    )
    wait = HistogramMetricFamily(
        "fastworker_task_queue_wait_seconds",
        "Time from queued to started, per attempt.",
        labels=["task"],
    )
    for name, counters in names:
        _histogram(run_time, [name], counters.run_time)
        _histogram(wait, [name], counters.queue_wait)
    out += [run_time, wait]
    out.append(
        GaugeMetricFamily(
            "fastworker_result_cache_entries", "Results in the cache.", value=cache.entries
        )
    )
    out.append(
        GaugeMetricFamily(
            "fastworker_result_cache_bytes", "Approximate bytes of the cache.", value=cache.bytes
        )
    )
    if journal_commits is not None:
        commits = HistogramMetricFamily(
            "fastworker_journal_commit_seconds", "Duration of journal group commits."
        )
        _histogram(commits, [], journal_commits)
        out.append(commits)
    out.append(
        CounterMetricFamily(
            "fastworker_dashboard_cpu_seconds",
            "CPU time the dashboard's observer and live pages took from the control plane.",
            value=dashboard_cpu,
        )
    )
    ring_stats = ring.statistics()
    out.append(
        GaugeMetricFamily(
            "fastworker_dashboard_recent_tasks",
            "Task summaries kept for the dashboard.",
            value=ring_stats["entries"],
        )
    )
    out.append(
        GaugeMetricFamily(
            "fastworker_dashboard_recent_tasks_bytes",
            "Approximate bytes of the dashboard's task summaries.",
            value=ring_stats["bytes"],
        )
    )
    return out


def render(metrics: Iterable[Metric]) -> bytes:
    """The text exposition format (version 0.0.4)."""
    return generate_latest(_Snapshot(list(metrics)))
