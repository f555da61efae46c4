"""Scheduling in virtual time: countdown, ETA, cancelling scheduled tasks, periodic, cron."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sample_tasks
import trio
from fw_support import start_following, wait_for_event

import actors
import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]
EPSILON = 1e-6  # float rounding of wall clock <-> trio clock conversions

# Quiet links: multi-day virtual waits would otherwise wake every link once a second.
QUIET_LINKS = actors.LinkConfig(heartbeat_interval=600.0, heartbeat_timeout=1800.0)


async def test_countdown_task_runs_once_and_not_before_its_time(autojump_clock: Any) -> None:
    """delay(countdown=30) is scheduled, runs once 30 s later (virtual time), never again."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(100):
            submitted = trio.current_time()
            task_id = await client.delay("stamp", "countdown", countdown=30)
            assert await client.status(task_id) is TaskStatus.SCHEDULED
            result = await client.result(task_id)
        assert result.ok
        assert result.value - submitted >= 30 - EPSILON
        assert result.value - submitted < 31
        await trio.sleep(120)  # virtual: long past the countdown, it must not run again
        assert sample_tasks.runs == [("countdown", result.value)]


async def test_eta_datetime_and_timestamp_wait_until_the_cluster_time(
    autojump_clock: Any,
) -> None:
    """An aware-datetime ETA and a float-timestamp ETA each run at (not before) that time."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        clock = cluster.control_plane.clock
        with trio.fail_after(1000):
            at_dt = clock.now() + 200
            dt_id = await client.delay("stamp", "dt", eta=datetime.fromtimestamp(at_dt, UTC))
            at_ts = clock.now() + 100
            ts_id = await client.delay("stamp", "ts", eta=at_ts)
            ts_result = await client.result(ts_id)
            assert await client.status(dt_id) is TaskStatus.SCHEDULED
            dt_result = await client.result(dt_id)
        assert clock.offset + ts_result.value >= at_ts - EPSILON
        assert clock.offset + ts_result.value < at_ts + 1
        assert clock.offset + dt_result.value >= at_dt - EPSILON
        assert clock.offset + dt_result.value < at_dt + 1
        assert [tag for tag, _ in sample_tasks.runs] == ["ts", "dt"]


async def test_a_past_eta_or_zero_countdown_runs_now(autojump_clock: Any) -> None:
    """An ETA in the past (or countdown <= 0) is queued at once instead of scheduled."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as cluster:
        client = cluster.client
        past = datetime.fromtimestamp(cluster.control_plane.clock.now(), UTC) - timedelta(hours=1)
        with trio.fail_after(10):
            past_id = await client.delay("stamp", "past", eta=past)
            zero_id = await client.delay("stamp", "zero", countdown=0)
            negative_id = await client.delay("stamp", "negative", countdown=-5)
            # No worker yet: all three wait in the queue, none in the scheduler.
            for task_id in (past_id, zero_id, negative_id):
                assert await client.status(task_id) is TaskStatus.QUEUED
            assert (await cluster.control_plane.statistics()).scheduled == 0
            start = trio.current_time()
            await cluster.add_subworker()
            results = [await client.result(i) for i in (past_id, zero_id, negative_id)]
        assert all(r.ok for r in results)
        assert all(r.value - start < 1 for r in results)


async def test_a_cancelled_scheduled_task_never_runs(autojump_clock: Any) -> None:
    """Cancelling a scheduled task returns True, ends it cancelled, and it never runs."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            task_id = await client.delay("stamp", "never", countdown=30)
            keep_id = await client.delay("stamp", "kept", countdown=30)
            assert await client.status(task_id) is TaskStatus.SCHEDULED
            assert await client.cancel(task_id) is True
            assert await client.status(task_id) is TaskStatus.CANCELLED
            result = await client.result(task_id)
            assert await client.cancel(task_id) is False
        assert result.status is TaskStatus.CANCELLED
        assert result.error is not None
        assert result.error.type == "TaskCancelled"
        with trio.fail_after(100):
            assert (await client.result(keep_id)).ok
        await trio.sleep(100)  # virtual: well past its due time
        assert [tag for tag, _ in sample_tasks.runs] == ["kept"]
        assert cluster.control_plane.scheduler.statistics().scheduled == 0


async def test_result_waiting_on_a_scheduled_task_returns_once_cancelled(
    autojump_clock: Any,
) -> None:
    """A result() waiting on a scheduled task returns CANCELLED as soon as it is cancelled."""
    async with open_cluster(TASKS, subworkers=1) as cluster:
        client = cluster.client
        with trio.fail_after(10):
            task_id = await client.delay("stamp", "waited", countdown=3600)
            outcome: list[fastworker.TaskResult] = []

            async def wait() -> None:
                outcome.append(await client.result(task_id))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert await client.cancel(task_id)
        assert outcome[0].status is TaskStatus.CANCELLED
        assert trio.current_time() < 10
        assert sample_tasks.runs == []


# -- periodic tasks -----------------------------------------------------------------------

periodic_registry = fastworker.Registry()
periodic_log: dict[str, sample_tasks.Recorder] = {}


@fastworker.task(registry=periodic_registry, repeat_interval=1.0)
async def slow_tick() -> None:
    """Runs every second but takes 2.5 s: ticks must be skipped, never overlap."""
    start = trio.current_time()
    await trio.sleep(2.5)
    periodic_log["slow_tick"].append((start, trio.current_time()))


async def test_periodic_task_never_overlaps_and_skips_overdue_ticks(autojump_clock: Any) -> None:
    """A 1 s periodic task that runs 2.5 s: runs never overlap, missed ticks are skipped."""
    periodic_log["slow_tick"] = sample_tasks.Recorder()
    async with open_cluster(subworkers=1, concurrency=4, registry=periodic_registry) as cluster:
        start = trio.current_time()
        with trio.fail_after(60):
            runs = list(await periodic_log["slow_tick"].wait_for(5))
        elapsed = trio.current_time() - start
        core = cluster.control_plane.control_plane
        assert core.skipped_ticks >= 5
    assert runs[0][0] - start == pytest.approx(1.0, abs=0.01)
    for (_, previous_end), (next_start, _) in itertools.pairwise(runs):
        assert next_start >= previous_end  # never two at once
        assert next_start - previous_end <= 1.0 + 0.01  # the next tick after the end runs
    # Skipped, not queued: about one run per 3 s, not one per second.
    assert elapsed < 5 * 3.5 + 1


async def test_periodic_next_fire_times_are_reported(autojump_clock: Any) -> None:
    """next_fire_times() names each periodic task with its next wall-clock fire time."""
    periodic_log["slow_tick"] = sample_tasks.Recorder()
    async with open_cluster(subworkers=0, local_concurrency=1, registry=periodic_registry) as c:
        now = c.control_plane.clock.now()
        times = await c.control_plane.next_fire_times()
        assert set(times) == {"slow_tick"}
        assert times["slow_tick"] == pytest.approx(now + 1.0, abs=0.01)
        with trio.fail_after(10):
            await periodic_log["slow_tick"].wait_for(1)
        later = await c.control_plane.next_fire_times()
        assert later["slow_tick"] > times["slow_tick"]


cron_registry = fastworker.Registry()
cron_log: dict[str, sample_tasks.Recorder] = {}


@fastworker.task(registry=cron_registry, cron="0 9 * * 1-5")
async def weekday_nine() -> None:
    """A weekday 09:00 job; records the trio time it ran."""
    cron_log["weekday_nine"].append(trio.current_time())


async def test_weekday_cron_after_friday_noon_fires_monday_nine(autojump_clock: Any) -> None:
    """`0 9 * * 1-5` seen at Friday 12:00 next fires Monday 09:00 (not Saturday/Sunday)."""
    cron_log["weekday_nine"] = sample_tasks.Recorder()
    friday_noon = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert friday_noon.strftime("%A") == "Friday"
    monday_nine = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    tuesday_nine = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()
    async with open_cluster(
        subworkers=1, registry=cron_registry, start_time=friday_noon, link=QUIET_LINKS
    ) as cluster:
        cp = cluster.control_plane
        assert cp.clock.now() == pytest.approx(friday_noon.timestamp(), abs=1)
        assert await cp.next_fire_times() == {"weekday_nine": monday_nine}
        with trio.fail_after(4 * 24 * 3600):
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, cluster.client)
                done = await wait_for_event(events, name="weekday_nine", status="success")
                nursery.cancel_scope.cancel()
        ran = cron_log["weekday_nine"].items
        assert len(ran) == 1
        assert cp.clock.offset + ran[0] == pytest.approx(monday_nine, abs=0.01)
        assert done.at == pytest.approx(monday_nine, abs=0.01)
        assert await cp.next_fire_times() == {"weekday_nine": tuesday_nine}
        result = await cluster.client.get_result(done.id)
        assert result is not None
        assert result.ok
        assert cluster.client.peer.links_opened == 1  # the quiet link held all weekend
