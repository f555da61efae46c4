"""The journal (``journal=PATH``): acknowledged work survives a control plane restart.

Every test runs whole clusters in one trio run (memory transport, autojump clock) on a
journal file in ``tmp_path``; a "restart" is leaving one ``open_cluster`` block and
opening another on the same file. The SQLite file is also read directly, to check what
is on disk at the moment an acknowledgement is given.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sample_tasks
import trio
import trio.testing
from fw_support import journal_rows
from support import wait_until

import fastworker
from fastworker import ConfigurationError, TaskStatus
from fastworker._journal import VERSION, Journal, JournaledTask, JournalFile, Record
from fastworker._messages import Outcome
from fastworker.testing import Cluster, open_cluster

TASKS = ["sample_tasks"]
T0 = 1_750_000_000.0
"""A fixed wall-clock start (POSIX seconds) for the tests that reason about wall time."""


def journal_of(cluster: Cluster) -> Journal:
    """The cluster's Journal actor (the test fails if it runs without one)."""
    journal = cluster.control_plane.journal
    assert journal is not None, "the control plane runs without a journal"
    return journal


async def queued(cluster: Cluster) -> int:
    """How many tasks wait in the control plane's queues."""
    q = (await cluster.control_plane.statistics()).queued
    return q.critical + q.high + q.normal + q.low


@asynccontextmanager
async def cluster_on(
    path: Path, tasks: list[str] | None = TASKS, seconds: float = 600, **options: Any
) -> AsyncIterator[Cluster]:
    """A test cluster on the journal at ``path`` (no local slots unless asked) whose block
    must finish within ``seconds`` of virtual time."""
    options.setdefault("local_concurrency", 0)
    async with open_cluster(tasks, journal=str(path), **options) as cluster:
        with trio.fail_after(seconds):
            yield cluster


# -- surviving a restart -------------------------------------------------------------------


async def test_accepted_tasks_survive_a_restart_and_run_exactly_once(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Tasks accepted but not started when the control plane stops are queued again on
    restart from the same journal, each runs exactly once, and the journal ends empty."""
    path = tmp_path / "journal.db"
    keys = [f"k{i}" for i in range(40)]
    async with cluster_on(path, subworkers=0) as cluster:
        ids = await cluster.client.delay_batch([("count_call", (k,)) for k in keys[:-1]])
        ids.append(await cluster.client.delay("count_call", keys[-1]))
        assert await queued(cluster) == len(keys)
    assert sample_tasks.calls == {}  # nothing ran: no worker at all
    assert journal_rows(path, "tasks") == ids

    async with cluster_on(path, subworkers=1) as cluster:
        results = await cluster.client.gather(ids)
        await trio.sleep(10)  # a duplicate run, if any, has every chance to show
        assert (await cluster.control_plane.statistics()).completed == len(keys)
        await cluster.control_plane.drain()
    assert [(r.status, r.value) for r in results] == [(TaskStatus.SUCCESS, k) for k in keys]
    assert sample_tasks.calls == dict.fromkeys(keys, 1)
    assert journal_rows(path, "tasks") == []
    assert sorted(journal_rows(path, "results")) == sorted(ids)


async def test_a_task_running_when_the_control_plane_stops_runs_again_after_restart(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """At-least-once across a restart: a task whose run had no recorded outcome when the
    control plane went away is still in the journal and runs again (attempt 1 anew)."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=1) as c:
        task_id = await c.client.delay("hold", "interrupted")
        await sample_tasks.started("interrupted").wait()
    assert journal_rows(path, "tasks") == [task_id]
    sample_tasks.gate("interrupted").set()
    async with cluster_on(path, subworkers=1) as c:
        result = await c.client.result(task_id)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "interrupted")
    assert result.attempts == 1  # attempts are not journaled: the count starts over
    assert sample_tasks.calls["interrupted"] == 2


async def test_a_scheduled_task_keeps_its_time_across_a_restart(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """A countdown task and an eta task stay scheduled over a restart and run at their
    wall-clock time; one whose time passed while the control plane was down runs at once."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=1, start_time=T0) as cluster:
        client = cluster.client
        by_countdown = await client.delay("stamp", "countdown", countdown=100)
        by_eta = await client.delay("stamp", "eta", eta=T0 + 150)
        overdue = await client.delay("stamp", "overdue", countdown=25)
        await trio.sleep(10)
        assert await client.status(by_countdown) is TaskStatus.SCHEDULED
        clock = cluster.control_plane.clock
    downtime = 20.0  # the control plane is "down" for 20 s of wall-clock time
    restart_wall = clock.now() + downtime
    assert sample_tasks.runs == []

    async with cluster_on(path, subworkers=1, start_time=restart_wall) as cluster:
        client = cluster.client
        clock = cluster.control_plane.clock
        assert await client.status(by_countdown) is TaskStatus.SCHEDULED
        assert await client.status(by_eta) is TaskStatus.SCHEDULED
        results = {r.task_id: r for r in await client.gather([overdue, by_countdown, by_eta])}
    ran_at = {tag: clock.offset + when for tag, when in sample_tasks.runs}
    assert ran_at["countdown"] == pytest.approx(T0 + 100, abs=1.0)
    assert ran_at["eta"] == pytest.approx(T0 + 150, abs=1.0)
    assert ran_at["overdue"] == pytest.approx(restart_wall, abs=1.0)  # due while down
    assert all(r.status is TaskStatus.SUCCESS for r in results.values())
    assert len(sample_tasks.runs) == 3


async def test_results_survive_a_restart(tmp_path: Path, autojump_clock: Any) -> None:
    """Results recorded before a (graceful) stop are answered after the restart by
    get_result, result and status, with their value, attempts and worker intact."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=1) as c:
        ok = await c.client.delay("add", 2, 3)
        failed = await c.client.delay("boom", "kaput")
        before = {r.task_id: r for r in await c.client.gather([ok, failed])}
        await c.control_plane.drain()
    async with cluster_on(path, subworkers=0) as c:
        client = c.client
        after_ok = await client.get_result(ok)
        after_failed = await client.get_result(failed)
        waited = await client.result(ok)
        status = await client.status(failed)
    assert after_ok is not None and after_failed is not None
    assert (after_ok.status, after_ok.value) == (TaskStatus.SUCCESS, 5)
    assert after_ok == before[ok] == waited
    assert after_failed.status is TaskStatus.FAILURE
    assert after_failed.error is not None and "kaput" in after_failed.error.message
    assert after_failed == before[failed]
    assert status is TaskStatus.FAILURE


async def test_a_finished_task_is_not_run_again_after_restart(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Finished tasks leave the journal's queue: a restart does not re-run them, and
    a client resubmitting one of their ids (its acknowledgement lost in a crash) gets
    the recorded result instead of a second run."""
    path = tmp_path / "journal.db"
    keys = [f"done{i}" for i in range(10)]
    async with cluster_on(path, subworkers=1) as c:
        ids = await c.client.delay_batch([("count_call", (k,)) for k in keys])
        await c.client.gather(ids)
        await c.control_plane.drain()
    assert journal_rows(path, "tasks") == []
    async with cluster_on(path, subworkers=1) as c:
        await trio.sleep(10)
        # The same id again, as a client's resubmission after a reconnect sends it.
        await c.client.submit("count_call", (keys[0],), task_id=ids[0])
        result = await c.client.result(ids[0])
        await trio.sleep(10)
        stats = await c.control_plane.statistics()
    assert sample_tasks.calls == dict.fromkeys(keys, 1)
    assert (result.status, result.value) == (TaskStatus.SUCCESS, keys[0])
    assert stats.completed == 0
    assert stats.queued.normal == stats.running == 0


async def test_drain_returns_only_once_the_last_outcomes_are_on_disk(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """The graceful stop (drain) waits for the journal to commit the outcomes it was told
    last, so a task finished before a drain is never run again after the restart."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=1) as c:
        journal = journal_of(c)
        gate = trio.Event()
        handle_batch = journal.handle_batch

        async def records_wait_for_the_gate(ctx: Any, batch: list[Any]) -> None:
            if any(isinstance(d.message, Record) for d in batch):
                await gate.wait()
            await handle_batch(ctx, batch)

        journal.handle_batch = records_wait_for_the_gate  # type: ignore[method-assign]
        task_id = await c.client.delay("count_call", "drained")
        assert (await c.client.result(task_id)).ok
        drained = trio.Event()

        async def drain() -> None:
            await c.control_plane.drain()
            drained.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await trio.testing.wait_all_tasks_blocked()
            assert not drained.is_set()  # the outcome is not on disk yet
            assert journal_rows(path, "results") == []
            gate.set()
        assert journal_rows(path, "results") == [task_id]
    assert journal_rows(path, "tasks") == []
    async with cluster_on(path, subworkers=1) as c:
        await trio.sleep(10)
        assert (await c.client.get_result(task_id)) is not None
    assert sample_tasks.calls == {"drained": 1}


# -- acknowledgement and group commit ------------------------------------------------------


async def test_an_acknowledged_delay_is_already_on_disk(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """The moment delay() or delay_batch() returns, the task's row is committed in the
    SQLite file (read here through a separate connection), with its eta if scheduled."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=0, start_time=T0) as cluster:
        client = cluster.client
        for i in range(5):
            task_id = await client.delay("add", i, i)
            assert journal_rows(path, "tasks")[-1] == task_id
        later = await client.delay("add", 1, 1, countdown=60, priority="high")
        batch = await client.delay_batch([("add", (i, 0)) for i in range(20)])
        assert journal_rows(path, "tasks")[-21:] == [later, *batch]
        db = sqlite3.connect(path)
        try:
            name, priority, eta = db.execute(
                "SELECT name, priority, eta FROM tasks WHERE id = ?", (later,)
            ).fetchone()
        finally:
            db.close()
    assert (name, priority) == ("add", int(fastworker.Priority.HIGH))
    assert eta == pytest.approx(T0 + 60, abs=1.0)


async def test_concurrent_submissions_are_group_committed(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Hundreds of concurrent delay() calls share commits: the journal commits far fewer
    transactions than it writes tasks, and every call is acknowledged (and on disk)."""
    path = tmp_path / "journal.db"
    n = 400
    ids: list[str] = []
    async with cluster_on(path, subworkers=0) as cluster:
        journal = journal_of(cluster)
        commits_before = journal.commits

        async def submit(i: int) -> None:
            ids.append(await cluster.client.delay("add", i, 1))

        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(submit, i)
        commits = journal.commits - commits_before
        written = journal.tasks_written
    assert written == n
    assert sorted(journal_rows(path, "tasks")) == sorted(ids)
    assert 1 <= commits <= n // 10, f"{commits} commits for {n} tasks"


# -- compaction ----------------------------------------------------------------------------


async def test_compaction_removes_results_past_their_ttl(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Results older than result_ttl are deleted from the journal by the periodic
    compaction (journal_compact_interval), while younger ones stay."""
    path = tmp_path / "journal.db"
    async with cluster_on(
        path, subworkers=1, result_ttl=60.0, journal_compact_interval=10.0
    ) as cluster:
        client = cluster.client
        journal = journal_of(cluster)
        old = await client.delay_batch([("add", (i, 1)) for i in range(5)])
        await client.gather(old)
        await wait_until(
            lambda: journal.outcomes_written >= len(old),
            timeout=30,  # virtual seconds, like every wait here
            what="the five outcomes written",
            observe=lambda: journal.outcomes_written,
        )
        assert sorted(journal_rows(path, "results")) == sorted(old)
        await trio.sleep(40)
        young = await client.delay("add", 0, 0)
        await client.result(young)
        await wait_until(
            lambda: not set(journal_rows(path, "results")) & set(old),
            timeout=100,
            what="the expired results compacted away",
            observe=lambda: journal_rows(path, "results"),
            max_poll=1.0,  # each look reads the database
        )
        expired_at = trio.current_time()
        left = journal_rows(path, "results")
        assert await client.get_result(old[0]) is None
    assert left == [young]
    assert expired_at < 100  # gone within a compaction interval or two, young not yet due


def test_compact_deletes_only_expired_results(tmp_path: Path) -> None:
    """JournalFile.compact deletes exactly the results whose expiry is at or before now."""
    journal = JournalFile(str(tmp_path / "journal.db"))
    try:
        for i, now in enumerate((100.0, 200.0, 300.0)):
            journal.write(
                [JournaledTask(f"t{i}", "add", b"\x92\x90\x80", 2, None)],
                [Outcome(id=f"t{i}", status="success", attempt=1)],
                ttl=50.0,
                now=now,
            )
        assert journal.compact(250.0) == 2
        tasks, results = journal.load(250.0)
    finally:
        journal.close()
    assert tasks == []
    assert [o.id for o in results] == ["t2"]


# -- refusing what is not a journal --------------------------------------------------------


def _text_file(path: Path) -> None:
    path.write_text("not a database, just notes\n" * 50)


def _other_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "INSERT INTO users (name) VALUES ('ada'), ('grace');"
    )
    db.close()


def _other_version(path: Path) -> None:
    JournalFile(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'version'", (str(VERSION + 1),))
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_text_file, "not a usable FastWorker journal"),
        (_other_database, "not a FastWorker journal"),
        (_other_version, f"version {VERSION + 1}"),
    ],
    ids=["text-file", "other-sqlite-database", "other-journal-version"],
)
async def test_a_foreign_file_is_refused_and_left_untouched(
    tmp_path: Path, make: Any, reason: str
) -> None:
    """A text file, another application's SQLite database, or a journal of another
    version is refused with a ConfigurationError naming the file; the file keeps its
    exact bytes and no side files (-wal, -shm) are left behind."""
    path = tmp_path / "precious.db"
    make(path)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        async with fastworker.open_control_plane(
            TASKS, journal=str(path), url="memory://journal-refusal", discovery=False
        ):
            pytest.fail("the control plane started on a foreign file")
    message = str(caught.value)
    assert str(path) in message
    assert reason in message
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


async def test_a_missing_journal_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A journal path in a directory that does not exist is refused with a
    ConfigurationError naming the directory; nothing is created."""
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigurationError, match="does not exist") as caught:
        async with fastworker.open_control_plane(
            TASKS, journal=str(missing / "journal.db"), url="memory://journal-nodir"
        ):
            pytest.fail("the control plane started without its journal directory")
    assert str(missing) in str(caught.value)
    assert not missing.exists()


# -- cancellation and periodic tasks -------------------------------------------------------


async def test_a_cancelled_queued_task_stays_cancelled_after_restart(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Cancelling a queued or a scheduled task is recorded: after a restart neither is
    queued again nor run, and their results say cancelled; the other task runs."""
    path = tmp_path / "journal.db"
    async with cluster_on(path, subworkers=0) as c:
        client = c.client
        keep = await client.delay("count_call", "keep")
        drop = await client.delay("count_call", "drop")
        later = await client.delay("count_call", "later", countdown=30)
        assert await client.cancel(drop)
        assert await client.cancel(later)
        await c.control_plane.drain()
    assert journal_rows(path, "tasks") == [keep]
    async with cluster_on(path, subworkers=1) as c:
        client = c.client
        kept = await client.result(keep)
        await trio.sleep(60)  # past the cancelled countdown
        dropped = await client.get_result(drop)
        status = await client.status(later)
        assert not await client.cancel(drop)  # already finished: cancelled
        stats = await c.control_plane.statistics()
    assert kept.status is TaskStatus.SUCCESS
    assert dropped is not None and dropped.status is TaskStatus.CANCELLED
    assert status is TaskStatus.CANCELLED
    assert sample_tasks.calls == {"keep": 1}
    assert stats.submitted == 1  # only "keep" was restored


periodic_registry = fastworker.Registry()
beats: dict[str, sample_tasks.Recorder] = {}
"""The start times of ``beat`` runs, a fresh Recorder per cluster run."""


@fastworker.task(registry=periodic_registry, repeat_interval=10.0)
async def beat() -> None:
    """A periodic task (every 10 s) that runs 4 s; records when each run started."""
    beats["runs"].append(trio.current_time())
    await trio.sleep(4)


async def test_periodic_runs_are_not_duplicated_by_replay(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Periodic runs are not journaled as submissions: a run cut off by the stop is not
    replayed, and after the restart the schedule alone ticks (first at +10 s, then every
    10 s, one run per tick); their results are still recorded."""
    path = tmp_path / "journal.db"
    beats["runs"] = sample_tasks.Recorder()
    async with cluster_on(path, tasks=None, subworkers=1, registry=periodic_registry) as cluster:
        await beats["runs"].wait_for(3)
        await trio.sleep(1)  # the third run is in progress when the stop comes
    assert journal_rows(path, "tasks") == []
    recorded = journal_rows(path, "results")
    assert len(recorded) == 2 and all(r.startswith("beat@") for r in recorded)

    beats["runs"] = sample_tasks.Recorder()
    async with cluster_on(path, tasks=None, subworkers=1, registry=periodic_registry) as cluster:
        start = trio.current_time()
        await trio.sleep(35)
        stats = await cluster.control_plane.statistics()
    assert [round(b - start) for b in beats["runs"].items] == [10, 20, 30]
    assert stats.submitted == 3  # the ticks; nothing replayed
