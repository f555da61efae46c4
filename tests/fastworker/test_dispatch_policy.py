"""Dispatch policy in virtual time: capability routing, queues, cluster-wide limits, unique
keys, and how priorities and limits interplay (section 2.2 of the design)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from fw_support import start_following, wait_for_event
from routing_log import log

import fastworker
from fastworker import Priority, TaskStatus
from fastworker.testing import open_cluster

A = ["routing_svc_a"]
B = ["routing_svc_b"]
TWO_SERVICES = [{"tasks": A}, {"tasks": B}]


@pytest.fixture(autouse=True)
def _fresh_logs() -> Iterator[None]:
    log.clear()
    yield
    log.clear()


def starts(log: list[tuple[str, str, float]], name: str) -> list[tuple[str, float]]:
    """(tag, start time) of every run of ``name``."""
    return [(tag, at) for task, tag, at in log if task == name]


def max_overlap(log: list[tuple[str, str, float]], name: str) -> int:
    """The most runs of ``name`` in progress at once, from its start and end records."""
    points = [(at, 1) for task, _, at in log if task == f"{name}:start"]
    points += [(at, -1) for task, _, at in log if task == f"{name}:end"]
    running = peak = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):  # ends before starts
        running += step
        peak = max(peak, running)
    return peak


async def test_each_task_runs_on_the_service_that_has_it(autojump_clock: Any) -> None:
    """Two subworkers with disjoint task modules, a control plane that imports neither:
    every task runs on the one subworker that has it, none fails."""
    async with open_cluster(subworkers=TWO_SERVICES, local_concurrency=0) as cluster:
        worker_a, worker_b = (node.node_id[:8] for node in cluster.subworkers)
        assert cluster.control_plane.registry.names() == []
        with trio.fail_after(60):
            ids = await cluster.client.delay_batch(
                [("svc_a.work", (f"a{i}",)) for i in range(6)]
                + [("svc_b.work", (f"b{i}",)) for i in range(6)]
            )
            results = await cluster.client.gather(ids)
    assert [r.status for r in results] == [TaskStatus.SUCCESS] * 12
    assert {r.worker for r in results[:6]} == {worker_a}
    assert {r.worker for r in results[6:]} == {worker_b}
    assert [r.value for r in results[:2]] == ["a:a0", "a:a1"]


async def test_unknown_names_are_refused_until_a_worker_announces_them(
    autojump_clock: Any,
) -> None:
    """A name nobody has is refused at once (nothing queued); once a worker that has it
    joined, the same submission is accepted."""
    async with open_cluster(subworkers=[{"tasks": A}], local_concurrency=0) as cluster:
        with trio.fail_after(60):
            with pytest.raises(fastworker.TaskNotRegistered, match=r"'svc_b\.work'"):
                await cluster.client.delay("svc_b.work", "x")
            with pytest.raises(fastworker.TaskNotRegistered):
                await cluster.client.delay_batch([("svc_a.work", ("ok",)), ("svc_b.nope", ())])
            stats = await cluster.client.stats()
            assert stats.submitted == 0
            await cluster.add_subworker(tasks=B)
            assert await cluster.client.call("svc_b.work", "x") == "b:x"


async def test_a_service_leaving_and_coming_back(autojump_clock: Any) -> None:
    """A task whose only service left stays queued, shown as waiting for a worker that has
    it (stats and events), keeps its priority, and runs when the service is back."""
    async with open_cluster(subworkers=TWO_SERVICES, local_concurrency=0) as cluster:
        client = cluster.client
        with trio.fail_after(120):
            assert await client.call("svc_b.note", "before") == "before"
            await cluster.kill_subworker(1)  # service B is gone
            async with trio.open_nursery() as nursery:
                events = await start_following(nursery, client)
                low = await client.delay("svc_b.note", "low", priority=Priority.LOW)
                critical = await client.delay("svc_b.note", "critical", priority="critical")
                event = await wait_for_event(events, id=critical, status="queued")
                assert event.detail == "waiting for a worker that has svc_b.note"
                nursery.cancel_scope.cancel()
            assert await client.call("svc_a.work", "still served") == "a:still served"
            stats = await client.stats()
            assert stats.waiting == {"svc_b.note": 2}
            assert stats.queued.critical == 1 and stats.queued.low == 1
            assert await client.status(low) is TaskStatus.QUEUED
            await trio.sleep(30)
            assert await client.status(critical) is TaskStatus.QUEUED
            await cluster.add_subworker(1, tasks=B)
            results = await client.gather([low, critical])
        assert [r.value for r in results] == ["low", "critical"]
        order = [tag for tag, _ in starts(log, "svc_b.note")]
        assert order == ["before", "critical", "low"]
        assert (await client.stats()).waiting == {}


def test_top_shows_tasks_waiting_for_a_worker() -> None:
    """`fastworker top` prints how many queued tasks wait for a worker that has each name."""
    from rich.console import Console

    from fastworker import ClusterStats, QueueStats
    from fastworker._top import render_stats

    stats = ClusterStats(
        QueueStats(0, 0, 3, 0), 0, 0, [], 3, 0, 0, 0, 0, 0, False, {"svc_b.note": 3}
    )
    console = Console(record=True, width=120)
    console.print(render_stats(stats, None, 0.0, "ws://x"))
    assert "3 queued waiting for a worker that has svc_b.note" in console.export_text()


async def test_queues_pin_tasks_to_workers(autojump_clock: Any) -> None:
    """A subworker started with queues=["images"] gets only tasks of that queue; one with
    queues=["default"] only the others."""
    async with open_cluster(
        subworkers=[{"tasks": A, "queues": ["images"]}, {"tasks": A, "queues": "default"}],
        local_concurrency=0,
    ) as cluster:
        images, default = (node.node_id[:8] for node in cluster.subworkers)
        with trio.fail_after(60):
            ids = await cluster.client.delay_batch(
                [("svc_a.resize", (f"r{i}",)) for i in range(5)]
                + [("svc_a.work", (f"w{i}",)) for i in range(5)]
            )
            results = await cluster.client.gather(ids)
    assert {r.worker for r in results[:5]} == {images}
    assert {r.worker for r in results[5:]} == {default}


async def test_max_concurrency_is_cluster_wide_and_blocks_nothing_else(
    autojump_clock: Any,
) -> None:
    """max_concurrency=2 across two subworkers of 4 slots: never more than 2 at once (and
    2 are used); the tasks over the limit wait, and other tasks are not held behind them."""
    async with open_cluster(
        subworkers=[{"tasks": A}, {"tasks": A}], concurrency=4, local_concurrency=0
    ) as cluster:
        with trio.fail_after(120):
            limited = await cluster.client.delay_batch(
                [("svc_a.limited", (f"l{i}",)) for i in range(7)], priority="critical"
            )
            others = await cluster.client.delay_batch(
                [("svc_a.work", (f"w{i}",)) for i in range(4)]
            )
            results = await cluster.client.gather(limited + others)
    assert all(r.ok for r in results)
    assert max_overlap(log, "svc_a.limited") == 2
    assert all(at < 1.0 for _, at in starts(log, "svc_a.work"))
    # 7 runs of 5 s, 2 at a time: the last one starts after 15 s.
    assert max(at for _, at in starts(log, "svc_a.limited:start")) >= 15.0


async def test_rate_limit_spaces_starts_and_a_limited_critical_task_does_not_block_normal_ones(
    autojump_clock: Any,
) -> None:
    """rate_limit="3/m": never more than 3 starts in any 60 s window, none fails; while the
    CRITICAL rated tasks wait, NORMAL tasks behind them run at once."""
    async with open_cluster(
        subworkers=[{"tasks": A}, {"tasks": A}], local_concurrency=0
    ) as cluster:
        t0 = trio.current_time()
        with trio.fail_after(600):
            rated = await cluster.client.delay_batch(
                [("svc_a.rated", (f"r{i}",)) for i in range(8)], priority="critical"
            )
            normal = await cluster.client.delay_batch(
                [("svc_a.work", (f"w{i}",)) for i in range(3)]
            )
            results = await cluster.client.gather(rated + normal)
    assert all(r.ok for r in results)
    times = sorted(at - t0 for _, at in starts(log, "svc_a.rated"))
    assert len(times) == 8
    for i, at in enumerate(times):
        in_window = [t for t in times if at <= t < at + 60.0]
        assert len(in_window) <= 3, (i, times)
    assert times[-1] >= 120.0  # 8 starts at 3 a minute need two full windows
    assert times[-1] < 130.0  # ... and not much more: the wake-up is timely
    assert all(at - t0 < 5.0 for _, at in starts(log, "svc_a.work"))


async def test_strict_priority_holds_within_each_workers_eligible_set(autojump_clock: Any) -> None:
    """A worker with both services' tasks takes queued work by priority across both, even
    though the other worker can run only one service's tasks."""
    async with open_cluster(
        subworkers=[{"tasks": A + B, "concurrency": 1}, {"tasks": B, "concurrency": 1}],
        local_concurrency=0,
    ) as cluster:
        client = cluster.client
        with trio.fail_after(120):
            await client.delay("svc_a.slow", "busy-x", 10.0)
            await client.delay("svc_b.slow", "busy-y", 20.0)
            await trio.testing.wait_all_tasks_blocked()
            assert len(log) == 2  # both slots are busy
            submitted = [
                ("svc_a.work", "a-low", Priority.LOW),
                ("svc_b.note", "b-normal", Priority.NORMAL),
                ("svc_a.work", "a-critical", Priority.CRITICAL),
                ("svc_b.note", "b-high", Priority.HIGH),
            ]
            ids = [await client.delay(name, tag, priority=p) for name, tag, p in submitted]
            await client.gather(ids)
    runs = [(at, tag) for _, tag, at in log if "busy" not in tag]  # in the order they ran
    assert [tag for _, tag in runs] == ["a-critical", "b-high", "b-normal", "a-low"]
    assert runs[0][0] >= 10.0  # all of them waited for the first worker to be free


async def test_unique_keys(autojump_clock: Any) -> None:
    """While a task with key K is not terminal, or its result is cached, a submission with
    K returns its id and runs nothing; concurrent submissions agree; after the result
    expired K runs again."""
    async with open_cluster(subworkers=[{"tasks": A}], result_ttl=100.0) as cluster:
        client = cluster.client
        with trio.fail_after(600):
            first = await client.delay("svc_a.work", "one", unique_key="k1")
            ids: list[str] = []

            async def submit() -> None:
                ids.append(await client.delay("svc_a.work", "two", unique_key="k1"))

            async with trio.open_nursery() as nursery:
                for _ in range(10):
                    nursery.start_soon(submit)
            assert set(ids) == {first}
            batch = await client.delay_batch([("svc_a.work", ("x",)), ("svc_a.work", ("y",))])
            assert batch[0] != batch[1]
            assert (await client.result(first)).value == "a:one"
            again = await client.submit("svc_a.work", ("three",), unique_key="k1")
            assert again == first  # terminal, but its result is still cached
            await trio.sleep(150)  # past result_ttl
            fresh = await client.delay("svc_a.work", "four", unique_key="k1")
            assert fresh != first
            assert (await client.result(fresh)).value == "a:four"
        assert [tag for tag, _ in starts(log, "svc_a.work")].count("one") == 1
        assert "two" not in [tag for tag, _ in starts(log, "svc_a.work")]


async def test_journal_remembers_announced_names_and_unique_keys(
    autojump_clock: Any, tmp_path: Path
) -> None:
    """With a journal, a name announced before a restart is still accepted after it (and
    waits for a worker); the unique key of an unfinished task still holds."""
    path = str(tmp_path / "journal.db")
    async with open_cluster(subworkers=[{"tasks": B}], local_concurrency=0, journal=path) as c:
        with trio.fail_after(60):
            assert await c.client.call("svc_b.note", "first") == "first"
    async with open_cluster(subworkers=0, local_concurrency=0, journal=path) as c:
        with trio.fail_after(60):
            task_id = await c.client.delay("svc_b.note", "after", unique_key="once")
            assert (await c.client.stats()).waiting == {"svc_b.note": 1}
            with pytest.raises(fastworker.TaskNotRegistered):
                await c.client.delay("svc_b.never_announced")
    async with open_cluster(subworkers=[{"tasks": B}], local_concurrency=0, journal=path) as c:
        with trio.fail_after(60):
            again = await c.client.delay("svc_b.note", "dup", unique_key="once")
            assert again == task_id
            assert (await c.client.result(task_id)).value == "after"
    assert [tag for tag, _ in starts(log, "svc_b.note")] == ["first", "after"]


async def test_a_suspect_is_redelivered_only_to_a_worker_that_has_it(autojump_clock: Any) -> None:
    """A task in flight on a lost worker (a suspect, run alone next time) waits for a worker
    that has it: a free worker of another service never gets it."""
    async with open_cluster(
        subworkers=[{"tasks": A}, {"tasks": B}], local_concurrency=0, concurrency=2
    ) as cluster:
        client = cluster.client
        with trio.fail_after(120):
            task_id = await client.delay("svc_a.slow", "lost", 10.0)
            await trio.testing.wait_all_tasks_blocked()
            assert [tag for tag, _ in starts(log, "svc_a.slow")] == ["lost"]
            await cluster.kill_subworker(0)  # service A dies with the task in flight
            await trio.sleep(5)
            assert await client.status(task_id) is TaskStatus.QUEUED
            assert (await client.stats()).waiting == {"svc_a.slow": 1}
            assert await client.call("svc_b.note", "b still served") == "b still served"
            await cluster.add_subworker(tasks=A)
            result = await client.result(task_id)
        assert result.ok and result.attempts == 2
        assert result.worker == cluster.subworkers[-1].node_id[:8]


async def test_a_rate_wake_for_a_task_cancelled_meanwhile_does_not_spin(
    autojump_clock: Any,
) -> None:
    """The control plane wakes itself when a rate window opens; if the held-back task was
    cancelled meanwhile, nothing is scheduled again (no busy loop of wake-ups)."""
    async with open_cluster(subworkers=[{"tasks": A}], local_concurrency=0) as cluster:
        core = cluster.control_plane.control_plane
        timers = 0
        wake_timer = core._wake_timer
        guard = trio.CancelScope()

        async def counting(*args: Any) -> None:
            nonlocal timers
            timers += 1
            if timers > 20:
                guard.cancel()  # spinning: stop waiting (virtual time would not pass)
            await wake_timer(*args)

        core._wake_timer = counting
        with trio.fail_after(300):
            ids = await cluster.client.delay_batch([("svc_a.rated", (f"r{i}",)) for i in range(4)])
            await cluster.client.gather(ids[:3])
            assert await cluster.client.cancel(ids[3])
        with guard:
            await trio.sleep(120)  # past the rate window: the wake-up fires once
        assert 1 <= timers <= 3


async def test_a_workflow_across_two_services(autojump_clock: Any) -> None:
    """A workflow may chain tasks of two services that the control plane only knows from
    their announcements; each member runs on its own service."""
    from fastworker import chain, sig

    async with open_cluster(subworkers=TWO_SERVICES, local_concurrency=0) as cluster:
        with trio.fail_after(60):
            flow = chain(sig("svc_a.work", "x"), sig("svc_b.note"))
            assert await cluster.client.call(flow) == "a:x"
            with pytest.raises(fastworker.TaskNotRegistered):
                await cluster.client.delay(chain(sig("svc_a.work", "y"), sig("svc_c.nope")))
    assert [(task, tag) for task, tag, _ in log] == [("svc_a.work", "x"), ("svc_b.note", "a:x")]
