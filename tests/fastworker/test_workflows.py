"""Workflows end to end in the test harness (virtual time): chains, groups, chords,
nesting, failure, cancellation of the whole, events, and the journal across a restart."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flow_tasks as ft
import pytest
import sample_tasks
import trio
from fw_support import journal_rows, start_following, statuses_of, wait_for_event

import fastworker
from fastworker import TaskStatus, chain, chord, group, sig
from fastworker.testing import open_cluster

TASKS = ["sample_tasks", "flow_tasks"]


@pytest.fixture(autouse=True)
def _fresh_flow_tasks() -> Iterator[None]:
    ft.runs.clear()
    yield
    ft.runs.clear()


def flows_of(cluster: Any) -> int:
    """How many workflows the control plane still holds."""
    return len(cluster.control_plane.control_plane.flows)


async def test_a_chain_passes_values_inside_the_control_plane(autojump_clock: Any) -> None:
    """chain(inc(1), double, inc(step=10)): each member gets the previous value first;
    delay() returns one id; result/status work on it; the client sends one message and
    receives nothing until the end (no round trip per member)."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            flow = chain(sig(ft.inc, 1), sig(ft.double), sig("flow.inc", step=10))
            flow_id = await c.client.delay(flow)
            result = await c.client.result(flow_id)
            assert await c.client.status(flow_id) is TaskStatus.SUCCESS
            assert await c.client.call(flow) == 14
        assert flows_of(c) == 0
    assert (result.status, result.value, result.name) == (TaskStatus.SUCCESS, 14, "chain")
    assert ft.runs[:3] == ["inc(1)", "double(2)", "inc(4)"]


async def test_group_values_in_order_and_chord_on_a_counter(autojump_clock: Any) -> None:
    """group(...) is the list of member values in member order, however they finish;
    chord(group, cb) calls cb once with that list; the chord's value is cb's."""
    async with open_cluster(TASKS, subworkers=2, concurrency=4) as c:
        with trio.fail_after(30):
            sleeps = group(sig(ft.sleep, 3 - i, f"t{i}") for i in range(3))
            assert await c.client.call(sleeps) == ["t0", "t1", "t2"]
            values = await c.client.call(chord([sig(ft.inc, i) for i in range(20)], sig(ft.total)))
    assert values == sum(range(1, 21))
    assert ft.runs.count("total(20)") == 1


async def test_nesting_groups_in_chains_in_chords(autojump_clock: Any) -> None:
    """A group in a chain gives the previous value to each of its members; a chord's body
    may itself be a chain; a group may hold chains (the fetch, parse, fan out, publish shape)."""
    flow = chain(
        sig(ft.const, 2).set(immutable=True),
        group(sig(ft.inc), chain(sig(ft.double), sig(ft.double)), sig(ft.inc, step=5)),
        chord(group(sig(ft.total), sig(ft.total, extra=1)), chain(sig(ft.total), sig(ft.inc))),
    )
    async with open_cluster(TASKS, subworkers=1, concurrency=2) as c:
        with trio.fail_after(30):
            value = await c.client.call(flow)
    # [3, 8, 7] -> each total: 18, 19 -> total 37 -> inc 38
    assert value == 38


async def test_a_failing_chain_member_stops_the_chain(autojump_clock: Any) -> None:
    """The member after the failing one never runs and ends cancelled; the flow's error is
    the failing member's; call() raises TaskFailed carrying it."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            flow_id = await c.client.delay(chain(sig(ft.inc, 1), sig(ft.fail), sig(ft.double)))
            result = await c.client.result(flow_id)
            last = await c.client.result(f"{flow_id}:3")
            with pytest.raises(fastworker.TaskFailed) as raised:
                await c.client.call(chain(sig(ft.inc, 1), sig(ft.fail)))
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.type == "ValueError"
    assert result.error.message == "failed on 2"
    assert last.status is TaskStatus.CANCELLED
    assert raised.value.result.error is not None
    assert raised.value.result.error.type == "ValueError"
    assert not any(run.startswith("double") for run in ft.runs)


async def test_retries_happen_before_a_member_counts_as_failed(autojump_clock: Any) -> None:
    """A member that fails twice then succeeds (retries=5, backoff in virtual time) does
    not fail the chain: the next member gets its value."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(120):
            value = await c.client.call(chain(sig("flaky", "k", 2), sig(ft.collect_args)))
    assert value == [["ok after 3"], {}]


async def test_a_failing_group_member_cancels_its_running_siblings(autojump_clock: Any) -> None:
    """chord(group(hold a, hold b, fail), cb): the failure cancels a and b through their
    cancel scopes (their finally runs), the callback never runs, members never started end
    cancelled, and the flow's error is the failing member's."""
    async with open_cluster(TASKS, subworkers=1, concurrency=4) as c:
        with trio.fail_after(30):
            flow = chord(
                group(sig("hold", "a"), sig("hold", "b"), sig(ft.fail, "x").set(countdown=5)),
                sig(ft.total),
            )
            flow_id = await c.client.delay(flow)
            await sample_tasks.started("a").wait()
            await sample_tasks.started("b").wait()
            result = await c.client.result(flow_id)
            members = [await c.client.result(f"{flow_id}:{i}") for i in (2, 3, 4, 5)]
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.type == "ValueError"
    assert [m.status for m in members] == [
        TaskStatus.CANCELLED,
        TaskStatus.CANCELLED,
        TaskStatus.FAILURE,
        TaskStatus.CANCELLED,
    ]
    assert sorted(sample_tasks.events) == ["finally:a", "finally:b", "start:a", "start:b"]
    assert not any(run.startswith("total") for run in ft.runs)


async def test_cancel_of_a_whole_workflow_mid_run(autojump_clock: Any) -> None:
    """cancel(flow_id) interrupts the running member, members never started end
    cancelled, the flow ends cancelled (call raises TaskCancelled); a second cancel is
    False; the control plane holds nothing afterwards."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            flow = chain(sig(ft.inc, 1), sig("hold", "victim").set(immutable=True), sig(ft.inc))
            calling: list[BaseException] = []

            async def call() -> None:
                try:
                    await c.client.call(flow)
                except fastworker.TaskCancelled as exc:
                    calling.append(exc)

            flow_id = await c.client.delay(flow)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call)
                await sample_tasks.started("victim").wait()
                assert await c.client.status(flow_id) is TaskStatus.RUNNING
                assert await c.client.cancel(flow_id) is True
                assert await c.client.status(flow_id) is TaskStatus.CANCELLED
                assert await c.client.cancel(flow_id) is False
                (other,) = [i for i in c.control_plane.control_plane.flows.flows]
                assert await c.client.cancel(other) is True
            statuses = [(await c.client.result(f"{flow_id}:{i}")).status for i in (1, 2, 3)]
        assert flows_of(c) == 0 and not c.control_plane.control_plane.tasks
    assert statuses == [TaskStatus.SUCCESS, TaskStatus.CANCELLED, TaskStatus.CANCELLED]
    assert sample_tasks.events.count("finally:victim") == 2
    assert len(calling) == 1
    assert not [run for run in ft.runs if run == "inc(victim)"]


async def test_events_follow_the_workflow_and_its_members(autojump_clock: Any) -> None:
    """events() shows the flow id running, then success; members have their own events."""
    async with open_cluster(TASKS, subworkers=1) as c, trio.open_nursery() as nursery:
        with trio.fail_after(30):
            recorder = await start_following(nursery, c.client)
            flow_id = await c.client.delay(chain(sig(ft.inc, 1), sig(ft.inc)))
            await wait_for_event(recorder, id=flow_id, status="success")
            await wait_for_event(recorder, id=f"{flow_id}:2", status="success")
            nursery.cancel_scope.cancel()
    assert statuses_of(recorder, flow_id) == ["running", "success"]


async def test_unknown_members_refuse_the_whole_workflow(autojump_clock: Any) -> None:
    """A member naming no registered task refuses the workflow at delay(): nothing queued."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30), pytest.raises(fastworker.TaskNotRegistered, match="nope"):
            await c.client.delay(chain(sig(ft.inc, 1), sig("nope")))
        assert flows_of(c) == 0 and not c.control_plane.control_plane.tasks
        with pytest.raises(fastworker.ConfigurationError):
            await c.client.delay(chain(sig(ft.inc, 1)), countdown=5)


async def test_set_countdown_and_priority_apply_to_a_member(autojump_clock: Any) -> None:
    """sig(...).set(countdown=) schedules that member (virtual time) once its turn
    comes; .set(priority=) is the member's priority in the queue."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as c:
        with trio.fail_after(30):
            flow_id = await c.client.delay(
                chain(sig(ft.inc, 1).set(priority="critical"), sig(ft.inc).set(countdown=50))
            )
            await trio.testing.wait_all_tasks_blocked()
            rec = c.control_plane.control_plane.tasks[f"{flow_id}:1"]
            assert rec.priority == 0 and rec.status is TaskStatus.QUEUED
            assert await c.client.status(flow_id) is TaskStatus.QUEUED
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(120):
            later = sig("stamp", "b").set(countdown=50, immutable=True)
            flow_id = await c.client.delay(chain(sig("stamp", "a"), later))
            result = await c.client.result(flow_id)
    (a, at_a), (b, at_b) = sample_tasks.runs
    assert (a, b, result.value) == ("a", "b", at_b)
    assert at_b - at_a >= 50


async def test_a_chord_over_ten_thousand_members(autojump_clock: Any) -> None:
    """10,000 members in one chord: one submission, the callback gets the 10,000 values
    in order, once; every member's result is in the cache under its own id."""
    n = 10_000
    async with open_cluster(TASKS, subworkers=2, concurrency=16, result_cache_size=20_000) as c:
        with trio.fail_after(600):
            flow_id = await c.client.delay(
                chord(group(sig(ft.inc, i) for i in range(n)), sig(ft.total))
            )
            result = await c.client.result(flow_id)
            some = await c.client.result(f"{flow_id}:{n + 1}")
    assert (result.status, result.value) == (TaskStatus.SUCCESS, sum(range(1, n + 1)))
    assert some.value == n
    assert ft.runs.count(f"total({n})") == 1


async def test_a_journaled_workflow_survives_a_restart(tmp_path: Path, autojump_clock: Any) -> None:
    """With a journal the control plane stops (abruptly) mid-workflow: after the restart
    the flow goes on under the same id, its finished members do not run again, the member
    running at the stop runs again, and the journal ends with no workflow left."""
    path = tmp_path / "journal.db"
    flow = chain(
        sig(ft.inc, 0),
        sig("hold", "mid").set(immutable=True),
        chord(group(sig(ft.collect_args), sig(ft.collect_args, 1)), sig(ft.collect_args)),
    )
    async with open_cluster(TASKS, subworkers=1, journal=str(path), local_concurrency=0) as c:
        with trio.fail_after(30):
            flow_id = await c.client.delay(flow)
            await sample_tasks.started("mid").wait()
            await trio.sleep(1)  # the first member's outcome is committed
    assert journal_rows(path, "workflows") == [flow_id]
    assert ft.runs == ["inc(0)"]
    sample_tasks.gate("mid").set()
    async with open_cluster(TASKS, subworkers=1, journal=str(path), local_concurrency=0) as c:
        with trio.fail_after(30):
            result = await c.client.result(flow_id)
            await c.control_plane.drain()
    assert result.status is TaskStatus.SUCCESS
    assert result.value == [[[[["mid"], {}], [["mid", 1], {}]]], {}]
    assert ft.runs == ["inc(0)", "args", "args", "args"]  # inc(0) did not run again
    assert sample_tasks.calls["mid"] == 2  # running at the stop: run again
    assert journal_rows(path, "workflows") == [] and journal_rows(path, "tasks") == []


async def test_a_member_whose_turn_has_not_come_is_pending_and_can_be_awaited(
    autojump_clock: Any,
) -> None:
    """status() of a member that has not started yet says pending (not unknown), and
    result() on it waits until it ran."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            flow = chain(sig("hold", "first"), sig(ft.inc, 1).set(immutable=True))
            flow_id = await c.client.delay(flow)
            await sample_tasks.started("first").wait()
            assert await c.client.status(f"{flow_id}:2") is TaskStatus.PENDING
            assert await c.client.status(f"{flow_id}:9") is None
            async with trio.open_nursery() as nursery:
                results: list[fastworker.TaskResult] = []

                async def wait_for_second() -> None:
                    results.append(await c.client.result(f"{flow_id}:2"))

                nursery.start_soon(wait_for_second)
                await trio.testing.wait_all_tasks_blocked()
                assert not results
                sample_tasks.gate("first").set()
    assert (results[0].status, results[0].value) == (TaskStatus.SUCCESS, 2)


async def test_a_member_on_a_lost_worker_is_redelivered_and_the_flow_goes_on(
    autojump_clock: Any,
) -> None:
    """A member running on a subworker that dies is redelivered like any task (to a new
    subworker); the workflow does not notice beyond the member's second run."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(60):
            flow_id = await c.client.delay(chain(sig("hold", "lost"), sig(ft.collect_args)))
            await sample_tasks.started("lost").wait()
            await c.kill_subworker(0)
            sample_tasks.gate("lost").set()
            await c.add_subworker()
            result = await c.client.result(flow_id)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, [["lost"], {}])
    assert sample_tasks.calls["lost"] == 2


class DiskFull:
    """Makes the cluster's journal file fail its writes while ``full`` is set."""

    def __init__(self, cluster: Any) -> None:
        journal = cluster.control_plane.journal
        assert journal is not None
        self.real_write = journal.file.write
        self.full = False
        journal.file.write = self.write

    def write(self, *args: Any) -> None:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        self.real_write(*args)


async def test_journal_refusals_refuse_or_fail_a_workflow(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Disk full at delay(flow): JournalWriteFailed, nothing of the flow is held or runs.
    Disk full when a later member is admitted: the flow fails with the journal's reason
    and that member never runs; once the disk has room, workflows run again."""
    path = tmp_path / "journal.db"
    async with open_cluster(TASKS, subworkers=1, journal=str(path), local_concurrency=0) as c:
        with trio.fail_after(60):
            disk = DiskFull(c)
            disk.full = True
            with pytest.raises(fastworker.JournalWriteFailed, match="disk is full"):
                await c.client.delay(chain(sig("count_call", "refused"), sig(ft.inc)))
            assert flows_of(c) == 0 and not c.control_plane.control_plane.tasks
            disk.full = False
            flow_id = await c.client.delay(chain(sig("hold", "x"), sig("count_call", "second")))
            await sample_tasks.started("x").wait()
            disk.full = True
            sample_tasks.gate("x").set()
            result = await c.client.result(flow_id)
            disk.full = False
            assert await c.client.call(chain(sig(ft.inc, 1), sig(ft.inc))) == 3
            await trio.sleep(5)
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.type == "JournalWriteFailed"
    assert "refused" not in sample_tasks.calls and "second" not in sample_tasks.calls


async def test_the_control_plane_describes_a_flows_members(autojump_clock: Any) -> None:
    """FlowTable.describe (for top and the dashboard) gives each member's live status."""
    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            held = sig("hold", "d").set(immutable=True)
            flow_id = await c.client.delay(chain(sig(ft.inc, 1), held, sig(ft.inc)))
            await sample_tasks.started("d").wait()
            table = c.control_plane.control_plane.flows
            assert table.describe(flow_id) == [
                (f"{flow_id}:1", "flow.inc", "success"),
                (f"{flow_id}:2", "hold", "running"),
                (f"{flow_id}:3", "flow.inc", "pending"),
            ]
            assert table.describe("nope") is None
            sample_tasks.gate("d").set()
            await c.client.result(flow_id)


async def test_abandoning_the_control_plane_ends_its_workflows(autojump_clock: Any) -> None:
    """A drain that ran out of time abandons every task (no journal): workflows whose
    members are dropped end failed with the member's reason, and members of the same
    flow ended by the cascade are not ended twice (the control plane does not crash)."""
    async with open_cluster(TASKS, subworkers=0, local_concurrency=0) as c:
        with trio.fail_after(30):
            group_id = await c.client.delay(group(sig(ft.inc, i) for i in range(5)))
            chain_id = await c.client.delay(chain(sig(ft.inc, 1), sig(ft.inc)))
            running, waiting = await c.control_plane.abandon("test")
            results = [await c.client.result(i) for i in (group_id, chain_id)]
            assert (await c.control_plane.statistics()).queued.normal == 0
    assert (running, waiting) == (0, 6)
    assert [r.status for r in results] == [TaskStatus.FAILURE, TaskStatus.FAILURE]
    assert all(r.error is not None and r.error.type == "ShuttingDown" for r in results)
    assert flows_of(c) == 0


async def test_a_workflow_too_big_for_one_message_is_refused_before_sending(
    autojump_clock: Any,
) -> None:
    """A workflow whose packed graph is over max_payload raises PayloadTooLarge naming
    the size and what to do; arguments that are not msgpack data name the member."""
    async with open_cluster(TASKS, subworkers=1) as c:
        async with c.open_client(max_payload=20_000) as small:
            with pytest.raises(fastworker.PayloadTooLarge, match="the workflow packs to"):
                await small.delay(group(sig(ft.inc, i) for i in range(5000)))
        with pytest.raises(fastworker.NotSerializable, match=r"flow\.inc"):
            await c.client.delay(chain(sig(ft.inc, object())))
        assert flows_of(c) == 0


async def test_a_callback_list_over_the_payload_limit_fails_the_chord(
    autojump_clock: Any,
) -> None:
    """Each member's value fits, but the list the chord's callback would get does not:
    the chord fails with PayloadTooLarge (saying to pass references) and the callback
    never runs."""
    async with open_cluster(TASKS, subworkers=1, max_payload=50_000) as c:
        with trio.fail_after(30):
            flow = chord(group(sig(ft.text, 10_000) for _ in range(8)), sig(ft.total))
            result = await c.client.result(await c.client.delay(flow))
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.type == "PayloadTooLarge"
    assert "reference" in result.error.message
    assert not any(run.startswith("total") for run in ft.runs)


async def test_a_malformed_workflow_is_refused_and_the_control_plane_serves_on(
    autojump_clock: Any,
) -> None:
    """A SubmitFlow whose graph is not well formed (bytes that are not a node list,
    arguments not packed as [args, kwargs]) is answered with an error naming the
    problem; nothing is queued and the control plane keeps serving."""
    import actors
    from fastworker._messages import SubmitFlow
    from fastworker._workflow import pack_nodes

    async with open_cluster(TASKS, subworkers=1) as c:
        with trio.fail_after(30):
            connection = await c.client._connection_ref()
            for packed in (b"junk", pack_nodes([["flow.inc", b"\x91\x90"]])):
                with pytest.raises(actors.RemoteError, match="malformed workflow"):
                    await connection.ask(SubmitFlow(c.client.new_id(), packed))
            assert flows_of(c) == 0 and not c.control_plane.control_plane.tasks
            assert await c.client.call(chain(sig(ft.inc, 1))) == 2
