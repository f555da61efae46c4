"""Tests for tasks.py, on a whole FastWorker cluster inside the test's trio run.

``fastworker.testing.open_cluster`` starts a control plane, subworkers and a client
in-process, over an in-memory transport, so pytest-trio's ``autojump_clock`` drives
every timer: retry backoff of minutes and a cron schedule over days take milliseconds.
"""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime

import pytest
import tasks
import trio
import trio.testing

import actors
import fastworker
from fastworker.testing import open_cluster

# Links between the in-process nodes exchange heartbeats every second. Over days of
# virtual time those wake-ups are nearly all the work, so a test that spans days
# slows them down (the memory transport never loses a connection anyway).
QUIET_LINKS = actors.LinkConfig(heartbeat_interval=3600.0, heartbeat_timeout=7200.0)

FRIDAY_0830 = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)


async def test_charge_retries_until_the_gateway_answers(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two GatewayDown, then success: 3 attempts, 30 s then 60 s of backoff (virtual time)."""
    calls: list[str] = []

    def flaky_charge(order_id: str, cents: int) -> str:
        calls.append(order_id)
        if len(calls) <= 2:
            raise tasks.GatewayDown("gateway timed out")
        return "rcpt-1"

    monkeypatch.setattr(tasks.gateway, "charge", flaky_charge)
    timeline: list[tuple[str, float]] = []

    async def record(client: fastworker.Client) -> None:
        async with aclosing(client.events()) as events:
            async for event in events:
                if event.kind == "task" and event.name == "shop.charge":
                    timeline.append((event.status, event.at))

    async with open_cluster(tasks=["tasks"], subworkers=2, start_time=FRIDAY_0830) as cluster:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record, cluster.client)
            await trio.testing.wait_all_tasks_blocked()  # the event subscription is in place
            task_id = await cluster.client.delay("shop.charge", "A-1", 1200)
            result = await cluster.client.result(task_id)
            nursery.cancel_scope.cancel()

    assert result.ok, result.error
    assert result.value == {"order": "A-1", "receipt": "rcpt-1"}
    assert result.attempts == 3
    assert len(calls) == 3
    # The control plane stamps events on its clock: from each "retrying" to the next
    # "running" is the backoff, 30 s then 60 s, each with jitter (x0.5 to x1.0).
    retrying = [at for status, at in timeline if status == "retrying"]
    running = [at for status, at in timeline if status == "running"]
    backoffs = [later - earlier for earlier, later in zip(retrying, running[1:], strict=True)]
    assert len(backoffs) == 2
    assert 15.0 <= backoffs[0] <= 30.0
    assert 30.0 <= backoffs[1] <= 60.0


async def test_bad_amount_fails_at_once(autojump_clock: trio.abc.Clock) -> None:
    """ValueError is not in retry_on: one attempt, and call() raises TaskFailed."""
    async with open_cluster(tasks=["tasks"], start_time=FRIDAY_0830) as cluster:
        with pytest.raises(fastworker.TaskFailed) as failed:
            await cluster.client.call("shop.charge", "A-2", -5)
    result = failed.value.result
    assert result is not None and result.attempts == 1
    assert result.error is not None and result.error.type == "ValueError"


async def test_weekday_digest_runs_on_weekday_mornings_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Friday 08:30 plus a week of virtual time: five runs, all at 09:00, none at weekends."""
    queued: list[datetime] = []
    succeeded = 0

    async def record_runs(client: fastworker.Client) -> None:
        nonlocal succeeded
        async with aclosing(client.events()) as events:
            async for event in events:
                if event.kind != "task" or event.name != "shop.weekday_digest":
                    continue
                if event.status == "queued":  # stamped by the control plane at the tick
                    queued.append(datetime.fromtimestamp(event.at, UTC))
                elif event.status == "success":
                    succeeded += 1

    async with open_cluster(tasks=["tasks"], start_time=FRIDAY_0830, link=QUIET_LINKS) as cluster:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(record_runs, cluster.client)
            await trio.sleep(7 * 24 * 3600)  # to Friday 08:30 a week later
            nursery.cancel_scope.cancel()

    assert [tick.strftime("%a %d %H:%M:%S") for tick in queued] == [
        "Fri 01 09:00:00",
        "Mon 04 09:00:00",
        "Tue 05 09:00:00",
        "Wed 06 09:00:00",
        "Thu 07 09:00:00",
    ]
    assert succeeded == 5


async def test_a_private_registry_keeps_a_schedule_to_one_test(
    autojump_clock: trio.abc.Clock,
) -> None:
    """A task registered in its own Registry runs only in a cluster given that registry."""
    registry = fastworker.Registry()
    ticks: list[float] = []

    @fastworker.task(name="probe.quarter_hourly", cron="*/15 * * * *", registry=registry)
    async def probe() -> None:
        ticks.append(trio.current_time())

    assert "probe.quarter_hourly" in registry
    assert "probe.quarter_hourly" not in fastworker.default_registry
    async with open_cluster(registry=registry, start_time=FRIDAY_0830, link=QUIET_LINKS) as cluster:
        await trio.sleep(59 * 60)  # 08:30 -> 09:29: ticks at 08:45, 09:00 and 09:15
        assert len(ticks) == 3
        assert "probe.quarter_hourly" in await cluster.control_plane.next_fire_times()
