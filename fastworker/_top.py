"""What ``fastworker top`` shows: workers, queue depths per priority, rates."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import trio
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ._records import ClusterStats


def render_stats(
    stats: ClusterStats,
    previous: ClusterStats | None,
    elapsed: float,
    url: str,
    notice: str | None = None,
) -> Group:
    """A renderable snapshot; rates come from the difference to ``previous``.

    ``notice`` (e.g. "the control plane is gone") is shown above everything, in red.
    """
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
        str(q.total),
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
    parts: list[Any] = [header, queues, workers, totals]
    if stats.waiting:
        waiting = Text(
            "\n".join(
                f"{count:,} queued waiting for a worker that has {name}"
                for name, count in sorted(stats.waiting.items())
            ),
            style="yellow",
        )
        parts.insert(2, waiting)
    if notice:
        parts.insert(0, Text(notice, style="bold red"))
    return Group(*parts)


def gone_notice(url: str, since: float) -> str:
    """What ``top`` shows while the control plane does not answer."""
    clock = time.strftime("%H:%M:%S", time.localtime(since))
    return (
        f"the control plane at {url} is gone (no answer since {clock}); "
        "showing its last numbers, reconnecting... press q to quit"
    )


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Keys arrive one at a time, unechoed; the terminal is restored on exit."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _wait_for_quit_key(fd: int) -> None:
    while True:
        key = await trio.to_thread.run_sync(os.read, fd, 1, abandon_on_cancel=True)
        if not key or key in (b"q", b"Q", b"\x1b"):
            return


async def run_live(client: Any, interval: float) -> None:
    """Refresh the view every ``interval`` seconds until ``q`` (or Ctrl-C); a control
    plane that stops answering is said so on screen, and the view recovers with it."""
    from rich.live import Live

    stats = await client.stats()
    previous: ClusterStats | None = None
    last = trio.current_time()
    gone_since: float | None = None
    interactive = sys.stdin.isatty()
    keys = _cbreak(sys.stdin.fileno()) if interactive else contextlib.nullcontext()
    hint = "  (q to quit)" if interactive else ""
    with keys, Live(render_stats(stats, None, 0.0, client.url + hint), auto_refresh=False) as live:
        async with trio.open_nursery() as nursery:
            if interactive:

                async def quit_on_key() -> None:
                    await _wait_for_quit_key(sys.stdin.fileno())
                    nursery.cancel_scope.cancel()

                nursery.start_soon(quit_on_key)
            while True:
                await trio.sleep(interval)
                fresh = None
                if client.connected:
                    with trio.move_on_after(max(interval, 1.0)):
                        with contextlib.suppress(Exception):
                            fresh = await client.stats()
                now = trio.current_time()
                if fresh is None:
                    gone_since = gone_since or time.time()
                    notice: str | None = gone_notice(client.url, gone_since)
                    live.update(render_stats(stats, None, 0.0, client.url + hint, notice))
                else:
                    gone_since = None
                    notice = None
                    previous, stats = stats, fresh
                    live.update(render_stats(stats, previous, now - last, client.url + hint))
                    last = now
                live.refresh()
