"""The README's quickstart, for real: the CLI, a whole system in processes, Ctrl-C."""

from __future__ import annotations

import json

import trio
from examples_support import FASTWORKER, alive, background, children_of, free_port, run

import fastworker


async def wait_for_subworkers(client: fastworker.Client, count: int) -> None:
    """Poll the cluster's stats until ``count`` subworkers have registered.

    The caller owns the timeout.
    """
    while True:
        stats = await client.stats()
        if sum(1 for worker in stats.workers if worker.id != "local") >= count:
            return
        await trio.sleep(0.05)


async def test_quickstart_runs_tasks_and_stops_cleanly_on_ctrl_c() -> None:
    """`fastworker run-actor-system --tasks examples.quickstart.tasks`, started from the
    repository root, imports the example as a namespace package, runs tasks submitted by
    `fastworker submit` (sync, async, and a retrying one that fails), and on SIGINT drains,
    stops its subworker process and exits 0."""
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    command = [*FASTWORKER, "run-actor-system", "--tasks", "examples.quickstart.tasks"]
    command += ["--port", str(port), "--subworkers", "1", "--no-discovery"]
    async with background(command) as system:
        with trio.fail_after(60):
            # open_client retries until the control plane listens (connect_timeout).
            async with fastworker.open_client(url, connect_timeout=30.0) as client:
                await wait_for_subworkers(client, 1)
                assert await client.call("greet", "world", 0.01) == "hello, world"
        subworkers = children_of(system.pid)

        with trio.fail_after(60):
            added = await run([*FASTWORKER, "submit", "add", "1", "2", "--wait", "--url", url])
        assert added.returncode == 0, added.stderr
        assert added.stdout.strip() == "3"

        with trio.fail_after(60):
            fetch = ["submit", "fetch_quote", "ACME", "1.0", "--wait", "--json"]
            failed = await run([*FASTWORKER, *fetch, "--url", url])
        assert failed.returncode == 1, failed.stderr  # exit code 1: the task failed
        outcome = json.loads(failed.stdout)
        assert outcome["status"] == "failure"
        assert outcome["attempts"] == 4  # the first run and 3 retries
        assert outcome["error"]["type"] == "ConnectionError"

        with trio.fail_after(60):
            code = await system.interrupt()
        assert code == 0, str(system)
        assert "draining" in system.output
        assert subworkers, "run-actor-system should have started a subworker process"
        assert not any(alive(pid) for pid in subworkers)
