"""Soak: a million tasks through `fastworker run-actor-system`, memory stays flat.

Slow (about a minute or two on 2 cores): run with ``pytest --run-slow tests/soak``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque

import pytest
import trio
from support import free_tcp_port
from support.process import children

import fastworker

TOTAL = int(os.environ.get("FASTWORKER_SOAK_TASKS", "1000000"))
CHUNK = 1000
IN_FLIGHT = 5  # chunks submitted but not yet gathered (well under the 10,000 cached results)
WARM_UP = max(TOTAL // 10, 50_000)  # past filling the result cache and the id window


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _system_rss(pid: int) -> dict[int, int]:
    return {p: _rss_kib(p) for p in [pid, *children(pid)]}


@pytest.mark.slow
async def test_a_million_tasks_with_flat_memory() -> None:
    """1,000,000 trivial tasks with default caches: every result right, and the RSS of the
    control plane and each subworker after warm-up stays within 10% to the end."""
    port = free_tcp_port()
    url = f"ws://127.0.0.1:{port}"
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "fastworker",
            "run-actor-system",
            "--tasks",
            "fastworker._bench_tasks",
            "--port",
            str(port),
            "--subworkers",
            "2",
            "--concurrency",
            "64",
            "--no-discovery",
            "--log-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        async with fastworker.open_client(url, connect_timeout=30) as client:
            with trio.fail_after(60):
                # Polling a process we do not share memory with: no event to wait on.
                while len([w for w in (await client.stats()).workers if w.id != "local"]) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            pending: deque[tuple[int, list[str]]] = deque()
            warm: dict[int, int] = {}
            done = 0
            started = time.perf_counter()
            with trio.fail_after(1800):
                for base in range(0, TOTAL, CHUNK):
                    ids = await client.delay_batch(
                        [("bench.add", (i, 1)) for i in range(base, base + CHUNK)]
                    )
                    pending.append((base, ids))
                    if len(pending) > IN_FLIGHT:
                        first, chunk_ids = pending.popleft()
                        results = await client.gather(chunk_ids)
                        assert [r.value for r in results] == list(
                            range(first + 1, first + CHUNK + 1)
                        )
                        done += CHUNK
                        if done == WARM_UP:
                            warm = _system_rss(process.pid)
                while pending:
                    first, chunk_ids = pending.popleft()
                    results = await client.gather(chunk_ids)
                    assert results[-1].value == first + CHUNK
                    done += CHUNK
            elapsed = time.perf_counter() - started
            final = _system_rss(process.pid)
            stats = await client.stats()
        print(
            f"\nsoak: {TOTAL:,} tasks in {elapsed:.0f}s ({TOTAL / elapsed:,.0f}/s); "
            f"RSS after warm-up {warm} KiB, at the end {final} KiB"
        )
        assert stats.completed >= TOTAL
        for pid, before in warm.items():
            assert final.get(pid, before) <= before * 1.10, (pid, before, final.get(pid))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            with trio.move_on_after(20):
                await process.wait()
        if process.returncode is None:
            for pid in children(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            await process.wait()
