"""myapp's own tests: the task package, run on a whole in-process FastWorker cluster.

The ``fastworker_cluster`` fixture comes with FastWorker (a pytest plugin); the
``@pytest.mark.fastworker(...)`` marker passes options to it. With pytest-trio's
``autojump_clock`` the schedules run in virtual time: days pass in milliseconds.
"""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime

import myapp.tasks
import pytest
import trio

import fastworker
from fastworker.testing import Cluster

FRIDAY_0830 = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


async def record_ticks(cluster: Cluster, name: str, ticks: list[datetime]) -> None:
    """Append the (virtual) wall-clock time at which each run of ``name`` was queued.

    The control plane stamps events on its clock; "queued" is the moment of the tick.
    (Sync tasks run in threads, and virtual time may move on while a thread runs, so
    the time of "success" is less exact.)
    """
    async with aclosing(cluster.client.events()) as events:
        async for event in events:
            if event.kind == "task" and event.name == name and event.status == "queued":
                ticks.append(datetime.fromtimestamp(event.at, UTC))


def test_the_package_registers_every_task_with_its_schedule() -> None:
    """Importing myapp.tasks registers the tasks of both modules, with their options."""
    registry = fastworker.default_registry
    assert {
        "billing.charge",
        "billing.sync_invoices",
        "reports.build",
        "reports.morning_summary",
    } <= set(registry.names())
    assert registry.get("billing.charge").priority is fastworker.Priority.HIGH
    assert registry.get("billing.sync_invoices").repeat_interval == 300
    assert registry.get("reports.morning_summary").describe_schedule() == "cron 0 9 * * 1-5"
    assert myapp.tasks.billing.charge.fastworker_task.retries == 3


@pytest.mark.fastworker(tasks=["myapp.tasks"], subworkers=2)
async def test_charge_runs_on_a_subworker(fastworker_cluster: Cluster) -> None:
    """A charge goes through the control plane to a subworker and its value comes back."""
    value = await fastworker_cluster.client.call("billing.charge", "cus_42", 1999)
    assert value == {"customer": "cus_42", "cents": 1999, "receipt": "r-cus_42-1999"}


@pytest.mark.fastworker(tasks=["myapp.tasks"])
async def test_bad_input_is_not_retried(fastworker_cluster: Cluster) -> None:
    """ValueError is not in retry_on: the charge fails after one attempt."""
    with pytest.raises(fastworker.TaskFailed) as failed:
        await fastworker_cluster.client.call("billing.charge", "cus_42", 0)
    assert failed.value.result is not None
    assert failed.value.result.attempts == 1
    assert failed.value.result.error is not None
    assert failed.value.result.error.type == "ValueError"


@pytest.mark.fastworker(tasks=["myapp.tasks"], subworkers=0, start_time=FRIDAY_0830)
async def test_invoices_sync_every_five_minutes(
    fastworker_cluster: Cluster, autojump_clock: trio.abc.Clock
) -> None:
    """The periodic task runs every 300 s, measured on the cluster's (virtual) clock."""
    ticks: list[datetime] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(record_ticks, fastworker_cluster, "billing.sync_invoices", ticks)
        await trio.sleep(16 * 60)  # 16 virtual minutes
        nursery.cancel_scope.cancel()
    assert [tick.strftime("%H:%M") for tick in ticks] == ["08:35", "08:40", "08:45"]


@pytest.mark.fastworker(tasks=["myapp.tasks"], subworkers=0, start_time=FRIDAY_0830)
async def test_morning_summary_runs_at_nine_then_skips_the_weekend(
    fastworker_cluster: Cluster, autojump_clock: trio.abc.Clock
) -> None:
    """Friday 08:30: it runs at 09:00 sharp, and the next run is Monday 09:00."""
    cluster = fastworker_cluster
    next_fire = await cluster.control_plane.next_fire_times()
    assert next_fire["reports.morning_summary"] == datetime(2024, 3, 1, 9, tzinfo=UTC).timestamp()
    ticks: list[datetime] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(record_ticks, cluster, "reports.morning_summary", ticks)
        await trio.sleep(35 * 60)  # 08:30 -> 09:05, virtual
        nursery.cancel_scope.cancel()
    assert [tick.strftime("%a %H:%M") for tick in ticks] == ["Fri 09:00"]
    next_fire = await cluster.control_plane.next_fire_times()
    assert next_fire["reports.morning_summary"] == datetime(2024, 3, 4, 9, tzinfo=UTC).timestamp()
