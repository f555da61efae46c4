"""A blocked event loop is seen and named (DESIGN.md section 2.5): real processes.

An ``async def`` task that calls ``time.sleep`` holds its subworker's trio loop. The
subworker's watchdog thread logs which task held it and for how long, with the advice
to make it a ``def`` task; every task still ends (none stays running).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from support import wait_until

import fastworker
from fastworker import TaskStatus
from fastworker._watchdog import LoopWatchdog, Stall, describe_frame

HERE = Path(__file__).resolve().parent


async def workers(client: fastworker.Client) -> bool:
    """Whether any worker registered with the client's control plane."""
    return bool((await client.stats()).workers)


def blocked_line_in(log: Any) -> str:
    """The whole log once the watchdog's report is in it, else ""."""
    log.seek(0)
    text = str(log.read().decode())
    return text if "blocked the event loop for" in text else ""


@pytest.mark.parametrize("seconds", [3.0, 8.0])
async def test_a_blocking_async_task_is_named_by_the_watchdog_in_a_real_subworker(
    seconds: float,
) -> None:
    """A subworker process runs block_loop(seconds) (time.sleep in an async task) beside
    6 ordinary tasks. Its log names the task and the time it held the loop; all 7 tasks
    end success and nothing is left running. Past the heartbeat timeout (8 s) the control
    plane loses the subworker and redelivers; the subworker, back, answers the blocker's
    new attempt with the result it already has instead of blocking again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    cluster = f"wd-{os.getpid()}-{time.monotonic_ns()}"
    async with fastworker.open_control_plane(
        ["containment_tasks"], port=0, discovery=False, local_concurrency=0, cluster=cluster
    ) as cp:
        with tempfile.TemporaryFile() as log:
            cmd = [sys.executable, "-m", "fastworker", "subworker", "--tasks"]
            cmd += ["containment_tasks", "--join", cp.url, "--cluster", cluster]
            process = await trio.lowlevel.open_process(
                [*cmd, "--concurrency", "4"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            try:
                async with fastworker.open_client(cp.url, cluster=cluster) as client:
                    await wait_until(
                        lambda: workers(client), timeout=60, what="the subworker registered"
                    )
                    with trio.fail_after(60):
                        blocker = await client.delay("block_loop", seconds)
                        others = [await client.delay("big_now", 10) for _ in range(6)]
                        results = await client.gather([blocker, *others])
                        stats = await client.stats()
                    text = await wait_until(
                        lambda: blocked_line_in(log),
                        timeout=60,
                        what="the watchdog's 'blocked the event loop for' line in the log",
                    )
            finally:
                process.kill()
                await process.wait()
    assert [r.status for r in results] == [TaskStatus.SUCCESS] * 7
    assert stats.running == 0
    match = re.search(
        r"task block_loop \(id (\S+), attempt 1\) blocked the event loop for ([\d.]+) s: "
        r"make it a def task or use trio.to_thread",
        text,
    )
    assert match, text
    assert match.group(1) == blocker
    assert seconds - 0.5 <= float(match.group(2)) <= seconds + 4.0, text
    if seconds > 5.0:
        assert results[0].attempts == 2
        assert f"task block_loop ({blocker}) already succeeded here as attempt 1" in text
    assert "the event loop has been blocked for" in text


async def test_the_watchdog_notices_a_stall_within_its_threshold() -> None:
    """In-process: a 1.5 s time.sleep in the loop is reported twice (noticed while it
    lasts, then its length), naming the innermost function; a loop that keeps running
    reports nothing."""
    stalls: list[tuple[Stall, float]] = []
    watchdog = LoopWatchdog(0.3, on_stall=lambda s: stalls.append((s, time.monotonic())))
    async with watchdog.running():
        await trio.sleep(1.0)
        assert stalls == []
        started = time.monotonic()
        _hold_the_loop(1.5)
        await wait_until(
            lambda: len(stalls) >= 2, timeout=10, what="two stall reports", observe=lambda: stalls
        )
    (noticed, noticed_at), (ended, _) = stalls
    assert not noticed.ended and ended.ended
    assert "_hold_the_loop" in noticed.culprit and ended.culprit == noticed.culprit
    # Noticed while the loop was still held: at least the threshold after the loop's
    # last beat, which came at most a tick (threshold / 4) before the stall began.
    assert noticed.seconds >= 0.3
    assert 0.3 - 0.075 <= noticed_at - started < 1.5
    assert 1.2 <= ended.seconds <= 2.5
    assert watchdog.stalls == 1


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


def test_describe_frame_without_an_attempt_names_the_innermost_function() -> None:
    """Outside an executor attempt the culprit is the innermost function and its place."""
    frame = sys._getframe()
    text = describe_frame(frame, attempt_code=None)
    assert text.startswith("test_describe_frame_without_an_attempt_names_the_innermost_function (")
    assert __file__ in text
