"""Crash drills: real processes on loopback, killed or frozen mid-load.

Each drill starts ``fastworker run-actor-system`` (control plane plus subworker
processes, ``--no-discovery``, a free port, this folder as the working directory so
``drill_tasks`` imports), loads it with thousands of 20 ms tasks from a Python client in
this process, then does something bad to one process by PID and checks the cluster's
promises: nothing acknowledged is lost, nothing is counted twice, waiting calls finish.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import trio
import trio.testing
from drill_support import (
    POLL,
    System,
    alive,
    expect_sums,
    free_port,
    running_system,
    start_system,
    wait_for_completed,
    wait_for_subworkers,
)
from support import wait_until

import fastworker

WARM = 20
"""Warm-up tasks (``add``) run before each drill's load; counted in ``completed``."""


async def warm_up(client: fastworker.Client, system: System) -> None:
    """Wait for both subworkers and run the warm-up tasks."""
    await wait_for_subworkers(client, system, 2)
    results = await client.gather(await client.delay_batch([("add", (i, i)) for i in range(WARM)]))
    expect_sums(results, [(i, i) for i in range(WARM)])


def remote_workers(stats: fastworker.ClusterStats) -> list[str]:
    """The ids of the subworkers registered with the control plane."""
    return [w.id for w in stats.workers if w.id != "local"]


async def test_sigkill_of_a_subworker_mid_load_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """A subworker process SIGKILLed with thousands of tasks in flight: its tasks are
    redelivered, every task completes once with the right value, and the control plane
    counts exactly n completions (plus the warm-up), one cached result per id."""
    n = 4000
    pairs = [(i, 7) for i in range(n)]
    async with running_system(tmp_path, subworkers=2, concurrency=8) as system:
        async with fastworker.open_client(system.url, connect_timeout=30) as client:
            with trio.fail_after(90):
                await warm_up(client, system)
                ids = await client.delay_batch([("slow_add", p) for p in pairs])
                await wait_for_completed(client, WARM + 300)
                before = await client.stats()
                victim = system.subworkers()[0]
                os.kill(victim, signal.SIGKILL)
                results = await client.gather(ids)
                stats = await client.stats()
                # The supervisor restarts the crashed subworker (a new process).
                await wait_for_subworkers(client, system, 2)
                after = system.subworkers()
    print(
        f"drill a: SIGKILL after {before.completed - WARM}/{n} done; "
        f"{stats.redelivered} redelivered; completed {stats.completed - WARM}"
    )
    assert before.completed < WARM + n  # the kill came mid-load
    assert not alive(victim) and victim not in after
    expect_sums(results, pairs)
    assert [r.task_id for r in results] == ids
    assert len(set(ids)) == n
    assert stats.completed == WARM + n
    assert stats.failed == 0
    assert stats.redelivered >= 1  # the kill hit tasks in flight
    assert sum(r.attempts > 1 for r in results) == stats.redelivered
    assert stats.results_cached == WARM + n


async def test_sigkill_of_the_control_plane_with_a_journal_loses_no_acknowledged_task(
    tmp_path: Path,
) -> None:
    """The control plane (``--journal``) is SIGKILLed mid-load and started again on the
    same journal and port: every task whose delay_batch() returned completes with the
    right value; the client, opened before the crash, reconnects on its own; a gather()
    and a result() waiting across the crash finish; a delay_batch() in flight at the
    crash is resubmitted and returns (accepted once, whether or not the old control plane
    had committed it); the journal ends with nothing unfinished."""
    n, chunk, backlog = 3000, 100, 400
    pairs = [(i, 1) for i in range(n)]
    crossing_pairs = [(100_000 + i, 2) for i in range(chunk)]
    crossing: list[str] = []
    journal = tmp_path / "journal.db"
    port = free_port()
    acked: list[str] = []
    early: list[fastworker.TaskResult] = []
    single: list[fastworker.TaskResult] = []
    first = await start_system(tmp_path, journal=journal, port=port, name="first")
    second: System | None = None
    try:
        async with fastworker.open_client(
            first.url, connect_timeout=30, reconnect_timeout=60
        ) as client:
            with trio.fail_after(120):
                await warm_up(client, first)

                async def submit() -> None:
                    for base in range(0, n, chunk):
                        # Paced: a bounded backlog, so the crash lands mid-load.
                        while True:
                            stats = await client.stats()
                            q = stats.queued
                            if q.critical + q.high + q.normal + q.low + stats.running < backlog:
                                break
                            await trio.sleep(POLL)
                        items = [("slow_add", p) for p in pairs[base : base + chunk]]
                        acked.extend(await client.delay_batch(items))

                async def gather_early(ids: list[str]) -> None:
                    early.extend(await client.gather(ids))

                async def result_of(task_id: str) -> None:
                    single.append(await client.result(task_id))

                async def submit_across_the_crash() -> None:
                    items = [("slow_add", p) for p in crossing_pairs]
                    crossing.extend(await client.delay_batch(items))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(submit)
                    await wait_for_completed(client, WARM + 600)
                    waited = list(acked)
                    nursery.start_soon(gather_early, waited)
                    nursery.start_soon(result_of, waited[-1])
                    # The client is in this run: once every task is blocked, the gather()
                    # and the result() are waiting for answers (registered and sent).
                    await trio.testing.wait_all_tasks_blocked()
                    waiting_at_crash = not early and not single
                    nursery.start_soon(submit_across_the_crash)
                    await trio.testing.wait_all_tasks_blocked()  # sent, not yet answered
                    in_flight_at_crash = not crossing
                    acked_at_crash = len(acked)
                    await first.crash()
                    crashed_at = trio.current_time()
                    second = await start_system(tmp_path, journal=journal, port=port, name="second")
                    await wait_for_subworkers(client, second, 2)
                    back_after = trio.current_time() - crashed_at
                results = await client.gather(acked)
                crossing_results = await client.gather(crossing)
                links = client.peer.links_opened
                stats = await client.stats()
            await wait_until(
                lambda: not unfinished_in(journal),
                timeout=30,
                what="no unfinished task left in the journal",
                observe=lambda: unfinished_in(journal),
                max_poll=POLL,
            )
    finally:
        await first.stop()
        if second is not None:
            await second.stop()
    print(
        f"drill b: SIGKILL with {acked_at_crash}/{n} acknowledged; back (client reconnected, "
        f"2 subworkers) after {back_after:.2f}s; the new control plane accepted "
        f"{stats.submitted} (restored + new) and completed {stats.completed}; "
        f"a batch of {chunk} in flight at the crash: {'resubmitted' if crossing else 'lost'}"
    )
    assert 0 < acked_at_crash < n
    assert waiting_at_crash  # the gather() and the result() waited across the crash
    assert in_flight_at_crash  # the crossing batch was unanswered when the process died
    expect_sums(crossing_results, crossing_pairs)
    assert len(set(crossing) | set(acked)) == n + chunk
    assert len(acked) == n == len(set(acked))
    expect_sums(results, pairs)
    assert [r.task_id for r in results] == acked
    expect_sums(early, pairs[: len(waited)])
    assert [r.value for r in single] == [sum(pairs[len(waited) - 1])]
    assert links >= 2  # the same client, reconnected


async def dropped_one(client: fastworker.Client) -> fastworker.ClusterStats | None:
    """The cluster's stats once it no longer counts two subworkers, else None."""
    stats = await client.stats()
    return stats if len(remote_workers(stats)) != 2 else None


def unfinished_in(journal: Path) -> int:
    """How many unfinished tasks the journal file records."""
    db = sqlite3.connect(journal)
    try:
        return int(db.execute("SELECT count(*) FROM tasks").fetchone()[0])
    finally:
        db.close()


async def test_a_frozen_subworker_is_detected_by_heartbeat_and_its_stale_results_discarded(
    tmp_path: Path,
) -> None:
    """A subworker SIGSTOPped mid-load (socket open, silent) is dropped by the control
    plane's heartbeat within the bound (5 s timeout + 1 s interval: under 8 s), its
    tasks are redelivered and complete; after SIGCONT it rejoins, and the late results
    of its dead attempts are discarded: every task has one result, completed == n."""
    n = 4000
    pairs = [(i, 3) for i in range(n)]
    async with running_system(tmp_path, subworkers=2, concurrency=8) as system:
        async with fastworker.open_client(system.url, connect_timeout=30) as client:
            with trio.fail_after(90):
                await warm_up(client, system)
                ids = await client.delay_batch([("slow_add", p) for p in pairs])
                await wait_for_completed(client, WARM + 200)
                victim = system.subworkers()[0]
                os.kill(victim, signal.SIGSTOP)
                frozen_at = trio.current_time()
                try:
                    stats = await wait_until(
                        lambda: dropped_one(client),
                        timeout=60,
                        what="the frozen subworker dropped by the heartbeat",
                        max_poll=POLL,  # the detection time is measured: look often
                    )
                    detected_after = trio.current_time() - frozen_at
                finally:
                    os.kill(victim, signal.SIGCONT)
                await wait_for_subworkers(client, system, 2)  # it rejoins, as a new worker
                results = await client.gather(ids)
                final = await client.stats()
                thawed = alive(victim) and victim in system.subworkers()
    print(
        f"drill c: SIGSTOP detected after {detected_after:.2f}s; "
        f"{stats.redelivered} redelivered then, {final.redelivered} in all"
    )
    assert detected_after < 8.0, f"the frozen subworker was dropped after {detected_after:.1f}s"
    assert detected_after > 4.0  # by the heartbeat timeout, not by a closed socket
    assert stats.redelivered >= 1
    assert thawed  # frozen and thawed, never killed: the same process serves on
    expect_sums(results, pairs)
    assert final.completed == WARM + n
    assert final.failed == 0
    assert sum(r.attempts > 1 for r in results) == final.redelivered
    assert final.results_cached == WARM + n
