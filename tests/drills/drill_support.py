"""Helpers for the crash drills: real ``fastworker run-actor-system`` processes on loopback.

Every process a drill starts is ended by PID in its ``finally`` (the control plane, and the
subworker processes it spawned, found through ``/proc/<pid>/task/*/children``); nothing is
ever killed by name. Readiness is polled under ``trio.fail_after``, never slept for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO

import trio
from support import free_tcp_port as free_port  # the old name, still imported by drills
from support.process import alive as alive  # re-exported for the drills
from support.process import children

import fastworker

HERE = Path(__file__).resolve().parent
TASKS = "drill_tasks"
POLL = 0.05
"""Seconds between two looks at something that has no event (a process, the stats)."""


def is_our_subworker(pid: int, port: int) -> bool:
    """True if ``pid`` is (still) a fastworker subworker joined to our port.

    Checked before every signal, so a PID reused by the system is never hit.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return b"subworker" in argv and f"ws://127.0.0.1:{port}".encode() in argv


class System:
    """One ``fastworker run-actor-system`` process (control plane plus subworkers)."""

    def __init__(self, process: trio.Process, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log
        self.subworker_pids: set[int] = set()
        """Every subworker PID seen (the supervisor restarts crashed ones under new PIDs)."""

    @property
    def url(self) -> str:
        """The control plane's URL."""
        return f"ws://127.0.0.1:{self.port}"

    def subworkers(self) -> list[int]:
        """The subworker processes running now (and remember them for the clean-up)."""
        pids = [p for p in children(self.process.pid) if is_our_subworker(p, self.port)]
        self.subworker_pids.update(pids)
        return pids

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill_subworkers(self) -> None:
        """SIGKILL every subworker of ours still alive (seen now or earlier)."""
        self.subworkers()
        for pid in sorted(self.subworker_pids):
            if alive(pid) and is_our_subworker(pid, self.port):
                os.kill(pid, signal.SIGKILL)

    async def crash(self) -> None:
        """SIGKILL the control plane process, as a crash would, and reap it.

        Its subworkers would notice (``--parent-pid``) within about a second and exit;
        they are killed here too, so nothing of the old system runs on.
        """
        self.subworkers()
        self.process.kill()
        await self.process.wait()
        self.kill_subworkers()

    async def stop(self) -> None:
        """End everything this system started, by PID (the drills' ``finally``)."""
        with trio.CancelScope(shield=True):
            if self.process.returncode is None:
                # Frozen first, so its supervisor cannot start a new subworker meanwhile.
                self.process.send_signal(signal.SIGSTOP)
            self.kill_subworkers()
            if self.process.returncode is None:
                self.process.kill()
                await self.process.wait()
            self.kill_subworkers()  # any restarted just before the freeze
            with trio.move_on_after(10):
                while any(alive(pid) for pid in self.subworker_pids):  # noqa: ASYNC110
                    await trio.sleep(POLL)


async def start_system(
    tmp_path: Path,
    *,
    subworkers: int = 2,
    concurrency: int = 8,
    port: int | None = None,
    journal: Path | None = None,
    extra: Sequence[str] = (),
    name: str = "system",
    local_concurrency: int | None = 0,
) -> System:
    """Start ``fastworker run-actor-system`` in this folder (drill_tasks importable)."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--tasks",
        TASKS,
        "--port",
        str(port),
        "--subworkers",
        str(subworkers),
        "--concurrency",
        str(concurrency),
        *(["--local-concurrency", str(local_concurrency)] if local_concurrency is not None else []),
        "--no-discovery",
        "--log-level",
        "warning",
        *extra,
    ]
    if journal is not None:
        cmd += ["--journal", str(journal)]
    # Only the flags above configure it: the user's FASTWORKER_* settings must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    log = tmp_path / f"{name}.log"
    output = _log_file(log)
    try:
        process = await trio.lowlevel.open_process(
            cmd, cwd=str(HERE), env=env, stdout=output, stderr=subprocess.STDOUT
        )
    finally:
        output.close()  # the child has its own copy of the descriptor
    return System(process, port, log)


def _log_file(path: Path) -> BinaryIO:
    """The process log, opened for the child (the caller closes its own copy)."""
    return open(path, "ab")


@asynccontextmanager
async def running_system(tmp_path: Path, **options: Any) -> AsyncIterator[System]:
    """``start_system`` for the block; everything it started is ended afterwards."""
    system = await start_system(tmp_path, **options)
    try:
        yield system
    finally:
        await system.stop()


async def wait_for_subworkers(client: fastworker.Client, system: System, count: int) -> None:
    """Wait until ``count`` subworkers are registered (the caller owns the timeout)."""
    while True:
        if system.process.returncode is not None:
            raise AssertionError(
                f"the system exited with code {system.process.returncode}:\n{system.log_tail()}"
            )
        stats = await client.stats()
        if len([w for w in stats.workers if w.id != "local"]) >= count:
            system.subworkers()
            return
        await trio.sleep(POLL)


async def wait_for_completed(client: fastworker.Client, count: int) -> None:
    """Wait until the control plane counts ``count`` completed tasks."""
    while (await client.stats()).completed < count:  # noqa: ASYNC110 (remote, no event)
        await trio.sleep(POLL)


def expect_sums(results: list[fastworker.TaskResult], pairs: list[tuple[int, int]]) -> None:
    """Every result is a success whose value is the sum of its pair, in order."""
    wrong = [
        (r.task_id, r.status.value, r.value, x + y)
        for r, (x, y) in zip(results, pairs, strict=True)
        if r.status is not fastworker.TaskStatus.SUCCESS or r.value != x + y
    ]
    assert not wrong, f"{len(wrong)} wrong results, e.g. {wrong[:3]}"
