"""``fastworker bench --workflows``: a chord against as many independent tasks.

A chord of ``--n`` trivial members (one submission, the callback sums the values)
against the batched throughput of as many independent tasks on the same system, and
the control plane's memory per pending workflow member (``--memory-members`` members
queued with no worker to run them), next to its memory per pending independent task.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import attrs
import trio

from ._bench_common import ADD, TOTAL, free_port, start_system, status_kib, stop_system
from ._bench_phases import batched, wait_for_workers
from ._canvas import chord, group, sig
from ._open_client import open_client


@attrs.define
class WorkflowRow:
    """Workflow figures for one subworker count."""

    subworkers: int
    n: int
    batched: float = 0.0
    chord: float = 0.0

    @property
    def ratio(self) -> float:
        """Chord throughput as a fraction of the batched throughput."""
        return self.chord / self.batched if self.batched else 0.0


@attrs.define
class PendingMemory:
    """The control plane's RSS growth per pending (queued, unrun) task or member."""

    members: int
    member_bytes: float = 0.0
    task_bytes: float = 0.0


CHORD_SIZE = 10_000
"""Members per chord in the memory figure (one submission must fit the message limit)."""


def _chord(n: int, base: int = 0) -> Any:
    return chord(group(sig(ADD, base + i, 1) for i in range(n)), sig(TOTAL))


async def _chord_rate(client: Any, n: int) -> float:
    start = time.perf_counter()
    result = await client.result(await client.delay(_chord(n)))
    elapsed = time.perf_counter() - start
    expected = sum(i + 1 for i in range(n))
    if result.value != expected:
        raise AssertionError(f"chord returned {result.value!r} ({result.status}), not {expected}")
    return n / elapsed


async def bench_workflows(args: argparse.Namespace, subworkers: int) -> WorkflowRow:
    """A chord of n members and n independent batched tasks, alternately, best of 3."""
    port = free_port()
    process, journal_dir = await start_system(args, port, subworkers, args.local_concurrency)
    row = WorkflowRow(subworkers, args.n)
    try:
        async with open_client(f"ws://127.0.0.1:{port}", connect_timeout=30.0) as client:
            with trio.fail_after(60):
                await wait_for_workers(client, subworkers)
            await client.gather(await client.delay_batch([(ADD, (i, 0)) for i in range(500)]))
            await _chord_rate(client, 500)
            for _ in range(3):
                row.batched = max(row.batched, await batched(client, args.n, args.chunk))
                row.chord = max(row.chord, await _chord_rate(client, args.n))
    finally:
        await stop_system(process, journal_dir)
    return row


async def _pending_growth(args: argparse.Namespace, members: int, flows: bool) -> float:
    """Bytes of control-plane RSS per pending task (or workflow member) with no worker."""
    port = free_port()
    # Its pending work is dropped at the end on purpose: no log about that.
    process, journal_dir = await start_system(args, port, 0, 0, log_level="critical")
    try:
        async with open_client(f"ws://127.0.0.1:{port}", connect_timeout=30.0) as client:
            # Warm-up: code paths and buffers, then the baseline.
            if flows:
                await client.delay(_chord(100, -100))
            else:
                await client.delay_batch([(ADD, (i, 1)) for i in range(100)])
            await trio.sleep(0.5)
            before = status_kib(process.pid, "VmRSS")
            for base in range(0, members, CHORD_SIZE):
                size = min(CHORD_SIZE, members - base)
                if flows:
                    await client.delay(_chord(size, base))
                else:
                    await client.delay_batch([(ADD, (base + i, 1)) for i in range(size)])
            while True:
                q = (await client.stats()).queued
                if q.total >= members + 100:
                    break
                await trio.sleep(0.05)
            await trio.sleep(0.5)
            after = status_kib(process.pid, "VmRSS")
    finally:
        await stop_system(process, journal_dir)
    return (after - before) * 1024 / members


async def run_workflow_bench(args: argparse.Namespace, counts: list[int]) -> int:
    """``fastworker bench --workflows``: print the workflow table (or JSON)."""
    rows = []
    for count in counts:
        print(f"bench: workflows, {count} subworker(s), n={args.n} ...", file=sys.stderr)
        rows.append(await bench_workflows(args, count))
    memory = PendingMemory(args.memory_members)
    print(f"bench: memory, {args.memory_members} pending ...", file=sys.stderr, flush=True)
    memory.member_bytes = await _pending_growth(args, args.memory_members, True)
    memory.task_bytes = await _pending_growth(args, args.memory_members, False)
    if args.json:
        data = {
            "throughput": [attrs.asdict(r) | {"ratio": r.ratio} for r in rows],
            "pending_memory": attrs.asdict(memory),
        }
        print(json.dumps(data, indent=2))
        return 0
    header = f"{'subworkers':>10} {'n':>7} {'batched/s':>11} {'chord/s':>11} {'chord/batched':>14}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r.subworkers:>10} {r.n:>7} {r.batched:>11,.0f} {r.chord:>11,.0f} {r.ratio:>14.0%}"
        )
    lines.append(
        f"control plane memory per pending member: {memory.member_bytes:,.0f} bytes "
        f"(per pending independent task: {memory.task_bytes:,.0f} bytes; "
        f"{memory.members:,} pending, RSS growth)"
    )
    print("\n".join(lines))
    return 0
