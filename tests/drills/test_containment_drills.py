"""Containment drills on real processes: a task that kills its process, a drain that runs
out of time, a journal whose disk fills up. In each, nothing acknowledged is lost
silently, no task stays ``running``, neighbours run a bounded number of times, and the
system goes on serving.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from drill_support import (
    alive,
    free_port,
    running_system,
    start_system,
    wait_for_subworkers,
)
from support import wait_until

import fastworker
from fastworker import JournalWriteFailed, TaskStatus


async def test_a_task_that_kills_its_subworker_is_quarantined_with_default_flags(
    tmp_path: Path,
) -> None:
    """``run-actor-system`` with default flags: a poison task (SIGKILLs its own process)
    takes down at most two subworkers, then fails with WorkerLost; its 40 neighbours all
    succeed, each run at most twice; the control plane never runs a task itself (so it
    survives), and the restarted subworkers serve new work afterwards."""
    async with running_system(tmp_path, local_concurrency=None) as system:
        with trio.fail_after(90):
            async with fastworker.open_client(system.url) as client:
                await wait_for_subworkers(client, system, 2)
                pairs = [(i, i) for i in range(40)]
                ids = await client.delay_batch([("slow_add", p, {}) for p in pairs[:20]])
                started = time.monotonic()
                poison = await client.delay("poison")
                ids += await client.delay_batch([("slow_add", p, {}) for p in pairs[20:]])
                result = await client.result(poison)
                quarantined_after = time.monotonic() - started
                neighbours = await client.gather(ids)
                assert await client.call("add", 2, 2) == 4
                stats = await client.stats()
        assert result.status is TaskStatus.FAILURE, system.log_tail()
        assert result.error is not None and result.error.type == "WorkerLost"
        assert "took down its worker 2 times" in result.error.message
        assert all(r.status is TaskStatus.SUCCESS for r in neighbours)
        assert [r.value for r in neighbours] == [x + y for x, y in pairs]
        assert max(r.attempts for r in neighbours) <= 2
        assert system.process.returncode is None, system.log_tail()
        assert stats.running == 0
        assert "local" not in [w.id for w in stats.workers]
        print(f"poison quarantined after {quarantined_after:.2f}s")


async def test_a_task_that_kills_a_single_process_system_is_not_replayed_forever(
    tmp_path: Path,
) -> None:
    """``--subworkers 0 --journal``: the poison runs in the control plane's own process and
    kills it; after the second such death the replay fails it with WorkerLost, and the
    restarted system serves again."""
    journal = tmp_path / "journal.db"
    port = free_port()
    options = {"subworkers": 0, "local_concurrency": None, "journal": journal, "port": port}
    system = await start_system(tmp_path, name="first", **options)  # type: ignore[arg-type]
    try:
        with trio.fail_after(90):
            async with fastworker.open_client(system.url) as client:
                poison = await client.delay("poison")
            assert await system.process.wait() == -signal.SIGKILL
            system = await start_system(tmp_path, name="second", **options)  # type: ignore[arg-type]
            assert await system.process.wait() == -signal.SIGKILL, system.log_tail()
            system = await start_system(tmp_path, name="third", **options)  # type: ignore[arg-type]
            async with fastworker.open_client(system.url) as client:
                result = await client.result(poison)
                assert await client.call("add", 1, 2) == 3
    finally:
        await system.stop()
    assert result.status is TaskStatus.FAILURE
    assert result.error is not None and "died 2 times" in result.error.message


async def one_running(client: fastworker.Client) -> bool:
    """Whether the control plane counts a running task."""
    return (await client.stats()).running >= 1


async def test_a_drain_that_runs_out_of_time_tells_waiting_clients(tmp_path: Path) -> None:
    """SIGINT with a task running past ``--shutdown-timeout``: the client waiting on it gets
    WorkerLost (and one waiting on a queued task ShuttingDown) instead of silence, and the
    log names what was lost."""
    async with running_system(
        tmp_path, subworkers=1, concurrency=1, extra=["--shutdown-timeout", "1"]
    ) as system:
        with trio.fail_after(60):
            async with fastworker.open_client(system.url, reconnect_timeout=1.0) as client:
                await wait_for_subworkers(client, system, 1)
                running = await client.delay("nap", 30.0)
                queued = await client.delay("nap", 30.0)
                await wait_until(lambda: one_running(client), timeout=50, what="a nap running")
                results: dict[str, fastworker.TaskResult] = {}
                async with trio.open_nursery() as nursery:

                    async def wait(task_id: str) -> None:
                        results[task_id] = await client.result(task_id)

                    nursery.start_soon(wait, running)
                    nursery.start_soon(wait, queued)
                    await trio.testing.wait_all_tasks_blocked()  # both watches sent
                    await client.stats()  # a round trip behind them: they were received
                    system.process.send_signal(signal.SIGINT)
            code = await system.process.wait()
        assert code == 0, system.log_tail()
        lost = results[running]
        assert lost.status is TaskStatus.FAILURE and lost.error is not None
        assert lost.error.type == "WorkerLost", lost
        dropped = results[queued]
        assert dropped.error is not None and dropped.error.type == "ShuttingDown", dropped
        log = system.log.read_text()
        assert "1 running tasks were killed and 1 waiting tasks dropped" in log, log


def _fill(path: Path) -> None:
    """Write zeros to ``path`` until the file system is full."""
    chunk = b"\0" * 65536
    with open(path, "wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


async def test_a_full_disk_refuses_submissions_and_recovers(tmp_path: Path) -> None:
    """The journal on a 4 MiB tmpfs: once a filler file takes all the space, submissions are
    refused with "database or disk is full" (and never run), the control plane keeps
    running and serving reads; after the filler is removed, submissions work again."""
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("needs root and mount to make a small tmpfs")
    try:
        async with running_system(tmp_path, subworkers=1, journal=disk / "journal.db") as system:
            with trio.fail_after(60):
                async with fastworker.open_client(system.url) as client:
                    await wait_for_subworkers(client, system, 1)
                    assert await client.call("add", 1, 1) == 2
                    filler = disk / "filler"
                    await trio.to_thread.run_sync(_fill, filler)
                    refused = 0
                    for i in range(5):
                        try:
                            await client.delay("add", i, 100)
                        except JournalWriteFailed as exc:
                            assert "disk is full" in str(exc), exc
                            refused += 1
                    assert refused >= 4  # a page or two may still have fitted
                    stats = await client.stats()  # reads are served
                    assert alive(system.process.pid)
                    filler.unlink()
                    assert await client.call("add", 2, 2) == 4
                    after = await client.stats()
            assert after.completed == stats.completed + 1 + (5 - refused)
            assert system.process.returncode is None
    finally:
        await trio.run_process(["umount", "-l", str(disk)], check=False, capture_stdout=True)


async def test_a_journal_on_a_read_only_file_system_is_refused_clearly(tmp_path: Path) -> None:
    """``control-plane --journal`` on a read-only mount exits 2 saying "read-only file
    system" (not "not a usable journal"), and leaves the file as it was."""
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount for a read-only bind mount")
    (source / "journal.db").write_bytes(b"")
    bound = await trio.run_process(
        ["mount", "--bind", str(source), str(view)], check=False, capture_stderr=True
    )
    if bound.returncode != 0:
        pytest.skip("bind mounts are not allowed here")
    try:
        await trio.run_process(["mount", "-o", "remount,bind,ro", str(view)])
        done = await trio.run_process(
            [
                sys.executable,
                "-m",
                "fastworker",
                "control-plane",
                "--tasks",
                "drill_tasks",
                "--port",
                "0",
                "--no-discovery",
                "--journal",
                str(view / "journal.db"),
            ],
            cwd=str(Path(__file__).parent),
            check=False,
            capture_stdout=True,
            capture_stderr=True,
        )
    finally:
        await trio.run_process(["umount", "-l", str(view)], check=False)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "read-only file system" in err, err
    assert (source / "journal.db").read_bytes() == b""
