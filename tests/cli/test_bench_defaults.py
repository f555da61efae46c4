"""``fastworker bench --defaults [--compare huey]``: the system as users get it.

Correctness only: the bench checks every result itself; no speed is asserted.
"""

from __future__ import annotations

import trio
from test_cli import base_env, fastworker_cli

from fastworker._bench_defaults import huey_missing

SMALL = ("--n", "300", "--seconds", "0.3")


async def test_defaults_json() -> None:
    """`bench --defaults --json` measures run-actor-system's defaults from a separate client
    process: every figure is filled in, memory counts all three system processes."""
    with trio.fail_after(120):
        run = await fastworker_cli("bench", "--defaults", *SMALL, "--json", limit=110)
    assert run.code == 0, run
    doc = run.json()
    assert doc["huey"] == [] and doc["huey_skipped"] is None, doc
    [ours] = doc["fastworker"]
    assert ours["batched"] > 0 and ours["pipelined"] > 0 and ours["seq_calls"] >= 20, ours
    assert 0 < ours["seq_p50_ms"] <= ours["seq_p99_ms"], ours
    # The control plane and its two default subworkers, all sampled under load.
    assert ours["processes"] >= 3 and ours["load_rss_mib"] > ours["idle_rss_mib"] / 2, ours
    assert set(ours["cpu_us_per_task"]) == {"batched", "pipelined", "sequential"}, ours


async def test_compare_huey_runs_or_says_why_not() -> None:
    """`--compare huey` prints the ratio table when huey, redis and redis-server are here,
    else the table of FastWorker alone and the reason the comparison was skipped."""
    with trio.fail_after(150):
        run = await fastworker_cli("bench", "--defaults", "--compare", "huey", *SMALL, limit=140)
    assert run.code == 0, run
    lines = run.stdout.splitlines()
    rows = {line.split("  ")[0]: line for line in lines}
    assert "batched tasks/s" in rows and "sequential call p50 ms" in rows, run.stdout
    missing = huey_missing()
    if missing is None:
        assert "huey + Redis" in lines[1] and "ratio" in lines[1], run.stdout
        assert rows["batched tasks/s"].split()[-1] == "25x", run.stdout  # the goal column
    else:
        assert f"huey comparison skipped: {missing}" in run.stdout, run.stdout


async def test_defaults_refuses_more_tasks_than_the_default_result_cache() -> None:
    """With --defaults the results of a run must fit the default result cache: a larger
    --n is a usage error (exit 2) that says why."""
    run = await fastworker_cli("bench", "--defaults", "--n", "20000", env=base_env())
    assert run.code == 2, run
    assert "result cache" in run.stderr, run
