"""The client side of ``fastworker bench``: the measurements, against a running system.

Each phase submits trivial tasks through a connected client and checks every result:
batched (``delay_batch`` in chunks), pipelined (``delay`` from concurrent senders),
sequential (``call`` round trips), a burst of large results, and the sequential p50
through the asyncio and blocking clients. Used in this process by the table modes and
in its own process by ``fastworker._bench_client`` (``--defaults``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import trio

from ._bench_common import ADD, BLOB
from ._blocking import connect
from ._open_client import open_client


async def wait_for_workers(client: Any, subworkers: int) -> None:
    """Wait until ``subworkers`` remote workers have joined (callers own the timeout)."""
    while True:
        stats = await client.stats()
        remote = [w for w in stats.workers if w.id != "local"]
        if len(remote) >= subworkers:
            return
        await trio.sleep(0.05)


def check_results(results: list[Any], expected: list[int]) -> None:
    """Raise AssertionError unless every result's value is the expected one."""
    bad = [
        (r.task_id, r.status.value, r.value, e)
        for r, e in zip(results, expected, strict=True)
        if r.value != e
    ]
    if bad:
        raise AssertionError(f"{len(bad)} wrong results, e.g. {bad[:3]}")


async def batched(client: Any, n: int, chunk: int) -> float:
    """Tasks/s: ``n`` tasks by ``delay_batch`` in chunks, until all results are in."""
    start = time.perf_counter()
    ids: list[str] = []
    for base in range(0, n, chunk):
        items = [(ADD, (i, 1)) for i in range(base, min(n, base + chunk))]
        ids += await client.delay_batch(items)
    results = await client.gather(ids)
    elapsed = time.perf_counter() - start
    check_results(results, [i + 1 for i in range(n)])
    return n / elapsed


async def pipelined(client: Any, n: int, senders: int) -> float:
    """Tasks/s: ``n`` single ``delay`` calls from ``senders`` senders, then all results."""
    ids: list[str | None] = [None] * n
    next_index = 0

    async def sender() -> None:
        nonlocal next_index
        while next_index < n:
            index = next_index
            next_index += 1
            ids[index] = await client.delay(ADD, index, 2)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(senders):
            nursery.start_soon(sender)
    results = await client.gather([i for i in ids if i is not None])
    elapsed = time.perf_counter() - start
    check_results(results, [i + 2 for i in range(n)])
    return n / elapsed


async def sequential(client: Any, seconds: float) -> list[float]:
    """Round-trip latencies (s) of ``call`` one at a time, for ``seconds`` (20 at least)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline or len(latencies) < 20:
        start = time.perf_counter()
        value = await client.call(ADD, i, 3)
        latencies.append(time.perf_counter() - start)
        if value != i + 3:
            raise AssertionError(f"call returned {value!r}, expected {i + 3}")
        i += 1
    return latencies


async def burst(client: Any, n: int, size: int) -> float:
    """Seconds from the moment ``n`` results of ``size`` bytes are ready to all received."""
    at = time.time() + 1.0 + n * 0.002
    ids = await client.delay_batch([(BLOB, (size, at)) for _ in range(n)])
    results = await client.gather(ids)
    elapsed = time.time() - at
    bad = [r for r in results if r.value is None or len(r.value) != size]
    if bad:
        raise AssertionError(f"{len(bad)} of {n} burst results missing or wrong: {bad[0]}")
    return elapsed


def client_kinds_p50(url: str, seconds: float) -> tuple[float, float]:
    """Sequential ``call`` p50 (ms) through the asyncio client and the blocking client.

    Runs in a worker thread: ``asyncio.run`` for the one, plain calls for the other.
    """

    def check(value: Any, i: int) -> None:
        if value != i + 3:
            raise AssertionError(f"call returned {value!r}, expected {i + 3}")

    async def asyncio_run() -> list[float]:
        async with open_client(url, connect_timeout=30.0) as client:
            for i in range(50):  # warm-up
                check(await client.call(ADD, i, 3), i)
            return await sequential(client, seconds)

    def blocking_run() -> list[float]:
        latencies: list[float] = []
        with connect(url, connect_timeout=30.0) as client:
            for i in range(50):
                check(client.call(ADD, i, 3), i)
            deadline = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < deadline or len(latencies) < 20:
                start = time.perf_counter()
                value = client.call(ADD, i, 3)
                latencies.append(time.perf_counter() - start)
                check(value, i)
                i += 1
        return latencies

    a = statistics.median(asyncio.run(asyncio_run())) * 1000
    b = statistics.median(blocking_run()) * 1000
    return a, b
