"""A periodic sync task never overlaps itself, even when a run times out.

A thread cannot be interrupted: a timed-out sync run goes on in its thread. For a
periodic task the run counts as running until that thread returns (its TaskTimeout is
reported then), so the next ticks are skipped instead of starting a second run beside it.
Real threads and the real clock: the point is a thread that outlives its timeout.
"""

from __future__ import annotations

import threading
import time

import trio
from support import wait_until

from fastworker import Registry, task
from fastworker.testing import open_cluster

registry = Registry()
_lock = threading.Lock()
probe = {"current": 0, "peak": 0, "runs": 0}


@task(registry=registry, repeat_interval=0.1, timeout=0.05)
def overrunning_tick() -> None:
    """Run three times longer than its timeout and its interval, counting overlaps."""
    with _lock:
        probe["current"] += 1
        probe["runs"] += 1
        probe["peak"] = max(probe["peak"], probe["current"])
    try:
        time.sleep(0.3)
    finally:
        with _lock:
            probe["current"] -= 1


async def test_a_timed_out_periodic_sync_run_is_not_overlapped_by_the_next_tick() -> None:
    """Over about 1.5 s of 0.1 s ticks, each run taking 0.3 s (past its 0.05 s timeout),
    never two runs at once; the timeouts are reported and later ticks were skipped."""
    async with open_cluster(
        None,
        registry=registry,
        subworkers=1,
        concurrency=4,
        local_concurrency=0,
        sync_tasks_in_threads=True,
        transport="websocket",
    ) as cluster:
        await wait_until(
            lambda: probe["runs"] >= 4,  # a thread's counter: no event to wait on
            timeout=30,
            what="four runs of overrunning_tick",
            observe=lambda: dict(probe),
        )
        with trio.fail_after(30):
            stats = await cluster.control_plane.statistics()
    assert probe["peak"] == 1, probe
    assert stats.failed >= 2  # the earlier runs' TaskTimeout
    assert cluster.control_plane.control_plane.skipped_ticks >= 3
