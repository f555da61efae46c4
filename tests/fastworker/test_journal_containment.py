"""The journal under failure: refusals instead of crashes, and losses that survive restarts.

A failed commit (disk full, read-only file system) refuses exactly the submissions in
it with the real reason and never runs them; the control plane keeps serving and
recovers when the disk does. Worker losses and in-process runs are journaled, so a
task that crashes the control plane itself cannot be replayed forever.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sample_tasks
import trio

import fastworker
from fastworker import JournalWriteFailed, TaskStatus
from fastworker._journal import JournaledTask, JournalFile
from fastworker.testing import Cluster, open_cluster

TASKS = ["sample_tasks"]


@asynccontextmanager
async def cluster_on(path: Path, seconds: float = 600, **options: Any) -> AsyncIterator[Cluster]:
    """A test cluster on the journal at ``path`` (no local slots unless asked)."""
    options.setdefault("local_concurrency", 0)
    options.setdefault("subworkers", 1)
    async with open_cluster(TASKS, journal=str(path), **options) as cluster:
        with trio.fail_after(seconds):
            yield cluster


class DiskFull:
    """Makes the cluster's journal file fail its writes while ``full`` is set."""

    def __init__(self, cluster: Cluster) -> None:
        journal = cluster.control_plane.journal
        assert journal is not None
        self.file = journal.file
        self.real_write = self.file.write
        self.full = False
        self.file.write = self.write  # type: ignore[method-assign]

    def write(self, *args: Any) -> None:
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        self.real_write(*args)


async def test_a_failed_commit_refuses_its_submissions_and_never_runs_them(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Disk full: delay raises JournalWriteFailed with the real reason; nothing runs.

    The control plane goes on serving reads (stats, results of earlier tasks), and once
    the disk has room again new submissions are accepted and run.
    """
    async with cluster_on(tmp_path / "journal.db") as cluster:
        client = cluster.client
        before = await client.delay("count_call", "before")
        assert (await client.result(before)).ok
        disk = DiskFull(cluster)
        disk.full = True
        with pytest.raises(JournalWriteFailed, match="database or disk is full") as info:
            await client.delay("count_call", "refused")
        assert "was not accepted and will not run" in str(info.value)
        with pytest.raises(JournalWriteFailed):
            await client.delay_batch([("count_call", ("refused-batch",), {})] * 3)
        stats = await client.stats()
        assert stats.queued.normal == 0 and stats.running == 0
        assert (await client.get_result(before)) is not None  # reads are still served
        disk.full = False
        assert await client.call("count_call", "after") == "after"
        # Give any wrongly kept task the time to run: none of the refused ones ever does.
        await trio.sleep(5)
    assert "refused" not in sample_tasks.calls
    assert "refused-batch" not in sample_tasks.calls
    assert sample_tasks.calls == {"before": 1, "after": 1}


async def test_outcomes_that_could_not_be_recorded_are_written_when_the_disk_recovers(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """A result finished while the disk was full reaches the journal once it has room, so a
    restart neither loses the result nor runs the task again."""
    path = tmp_path / "journal.db"
    async with cluster_on(path) as cluster:
        client = cluster.client
        disk = DiskFull(cluster)
        task_id = await client.delay("hold", "late")
        await sample_tasks.started("late").wait()
        disk.full = True
        sample_tasks.gate("late").set()
        assert (await client.result(task_id)).value == "late"
        await trio.sleep(3)  # retries fail while the disk is full
        disk.full = False
        journal = cluster.control_plane.journal
        assert journal is not None
        await trio.sleep(journal.retry_interval * 2)  # the retry loop writes it (virtual time)
        assert journal.outcomes_written == 1
    async with cluster_on(path) as cluster:
        result = await cluster.client.result(task_id)
        assert result.value == "late"
    assert sample_tasks.calls["late"] == 1


def test_a_rollback_after_disk_full_keeps_the_real_reason(tmp_path: Path) -> None:
    """SQLite may roll back by itself on a full disk; the error is still the real one."""
    journal = JournalFile(str(tmp_path / "j.db"))
    try:
        journal.db.execute("BEGIN IMMEDIATE")
        journal.db.execute("ROLLBACK")  # as SQLite does on SQLITE_FULL
        original = journal.db

        class Failing:
            in_transaction = False

            def execute(self, sql: str, *args: Any) -> Any:
                if sql.startswith("INSERT"):
                    raise sqlite3.OperationalError("database or disk is full")
                if sql == "ROLLBACK":
                    raise sqlite3.OperationalError("cannot rollback - no transaction is active")
                return original.execute(sql, *args)

        journal.db = Failing()  # type: ignore[assignment]
        with pytest.raises(sqlite3.OperationalError, match="disk is full"):
            journal.write([JournaledTask("a", "add", b"\x92\x90\x80", 2, None)], [], 60.0, 0.0)
        journal.db = original
    finally:
        journal.close()


def test_losses_and_in_process_runs_are_journaled(tmp_path: Path) -> None:
    """A task marked running counts as one loss at the next load; Lost rows keep counts."""
    path = str(tmp_path / "j.db")
    journal = JournalFile(path)
    try:
        tasks = [JournaledTask(t, "add", b"\x92\x90\x80", 2, None) for t in ("a", "b", "c")]
        journal.write(tasks, [], 60.0, 0.0)
        journal.write([], [], 60.0, 0.0, started=["a"], lost=[("b", 3, 1)])
    finally:
        journal.close()
    journal = JournalFile(path)
    try:
        loaded, _ = journal.load(0.0)
    finally:
        journal.close()
    by_id = {t.id: t for t in loaded}
    assert (by_id["a"].attempts, by_id["a"].losses) == (0, 1)
    assert (by_id["b"].attempts, by_id["b"].losses) == (3, 1)
    assert (by_id["c"].attempts, by_id["c"].losses) == (0, 0)


def test_a_version_1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    """A journal written by version 1 (no loss columns) opens, keeps its tasks, and is v2."""
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE tasks (id TEXT PRIMARY KEY, name TEXT NOT NULL, payload BLOB NOT NULL,
            priority INTEGER NOT NULL, eta REAL, accepted_at REAL NOT NULL);
        CREATE TABLE results (id TEXT PRIMARY KEY, outcome BLOB NOT NULL,
            expires_at REAL NOT NULL);
        INSERT INTO meta VALUES ('format', 'fastworker-journal'), ('version', '1');
        INSERT INTO tasks VALUES ('old', 'add', x'929080', 2, NULL, 0);
        """
    )
    db.close()
    journal = JournalFile(str(path))
    try:
        loaded, _ = journal.load(0.0)
        version = journal.db.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0]
    finally:
        journal.close()
    assert [(t.id, t.losses) for t in loaded] == [("old", 0)]
    assert version == "2"


async def test_a_task_that_kills_the_control_plane_is_not_replayed_forever(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Single-process mode with a journal: a task running in the control plane's own
    executor when the process dies is marked; after two such deaths the replay fails it
    with WorkerLost instead of running it again. Its innocent neighbour runs alone once
    and succeeds."""
    path = tmp_path / "journal.db"
    options = {"subworkers": 0, "local_concurrency": 4}
    async with cluster_on(path, **options) as c:
        poison = await c.client.delay("hold", "poison")
        neighbour = await c.client.delay("hold", "neighbour")
        await sample_tasks.started("poison").wait()
        await sample_tasks.started("neighbour").wait()
        # The process "dies" here: the block ends with both running.
    sample_tasks.reset()
    async with cluster_on(path, **options) as c:
        # Both are suspects now, each to run alone: the poison first (it was accepted
        # first); it "kills" the process again while the neighbour still waits.
        await sample_tasks.started("poison").wait()
        core = c.control_plane.control_plane
        assert core.tasks[poison].suspect and core.tasks[poison].losses == 1
        assert core.tasks[neighbour].status is TaskStatus.QUEUED
    sample_tasks.gate("neighbour").set()
    async with cluster_on(path, **options) as c:
        result = await c.client.result(poison)
        assert (await c.client.result(neighbour)).ok
        assert await c.client.call("add", 1, 1) == 2
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and result.error.type == "WorkerLost"
    assert "died 2 times" in result.error.message
    assert sample_tasks.calls == {"poison": 1, "neighbour": 1}


def test_the_journal_error_is_public() -> None:
    """JournalWriteFailed is a SubmissionError (so a FastWorkerError) users can catch."""
    assert issubclass(JournalWriteFailed, fastworker.SubmissionError)
