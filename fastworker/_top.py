"""What ``fastworker top`` shows: workers, queue depths per priority, rates."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ._messages import ClusterStats


def render_stats(
    stats: ClusterStats, previous: ClusterStats | None, elapsed: float, url: str
) -> Group:
    """A renderable snapshot; rates come from the difference to ``previous``."""
    rate_done = rate_in = 0.0
    if previous is not None and elapsed > 0:
        rate_done = (
            stats.completed + stats.failed - previous.completed - previous.failed
        ) / elapsed
        rate_in = (stats.submitted - previous.submitted) / elapsed
    q = stats.queued
    header = Text.assemble(
        ("FastWorker ", "bold"),
        f"{url}  ",
        ("draining  " if stats.draining else ""),
        f"in {rate_in:,.0f}/s  done {rate_done:,.0f}/s  running {stats.running}  "
        f"scheduled {stats.scheduled}  cached results {stats.results_cached}",
    )
    queues = Table(title="queued", show_edge=False)
    for name in ("critical", "high", "normal", "low", "total"):
        queues.add_column(name, justify="right")
    queues.add_row(
        str(q.critical),
        str(q.high),
        str(q.normal),
        str(q.low),
        str(q.critical + q.high + q.normal + q.low),
    )
    workers = Table(title="workers", show_edge=False)
    for name in ("worker", "slots", "free", "running", "completed"):
        workers.add_column(name, justify="right" if name != "worker" else "left")
    for w in stats.workers:
        workers.add_row(w.id, str(w.slots), str(w.free), str(w.running), str(w.completed))
    totals = Text(
        f"submitted {stats.submitted:,}  completed {stats.completed:,}  failed {stats.failed:,}  "
        f"retried {stats.retried:,}  redelivered {stats.redelivered:,}"
    )
    parts: list[Text | Table] = [header, queues, workers, totals]
    if stats.waiting:
        waiting = Text(
            "\n".join(
                f"{count:,} queued waiting for a worker that has {name}"
                for name, count in sorted(stats.waiting.items())
            ),
            style="yellow",
        )
        parts.insert(2, waiting)
    return Group(*parts)
