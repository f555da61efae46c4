"""`fastworker bench --workflows`: the workflow figures (correctness only, no speed asserted)."""

from __future__ import annotations

import trio
from test_cli import fastworker_cli


async def test_bench_workflows_smoke() -> None:
    """`bench --workflows --n 300 --subworkers 0 --memory-members 2000 --json` exits 0 with
    a chord and a batched rate (the bench checks the chord's sum itself) and memory
    figures per pending member and per pending task."""
    args = ("bench", "--workflows", "--n", "300", "--subworkers", "0")
    with trio.fail_after(120):
        run = await fastworker_cli(*args, "--memory-members", "2000", "--json", limit=115)
    assert run.code == 0, run
    doc = run.json()
    (row,) = doc["throughput"]
    assert row["subworkers"] == 0 and row["n"] == 300
    assert row["batched"] > 0 and row["chord"] > 0 and row["ratio"] > 0
    memory = doc["pending_memory"]
    assert memory["members"] == 2000
    assert memory["member_bytes"] > 0 and memory["task_bytes"] > 0
