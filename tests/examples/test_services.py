"""examples/services, for real: one control plane that imports no task code, two services
in their own subworker processes, routing, queues, cluster-wide limits, unique keys, a
service leaving and coming back (section 2.2 of the design)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from examples_support import FASTWORKER, PYTHON, REPO, Background, background, free_port, run
from support import wait_until

import fastworker
from fastworker import TaskStatus

IMAGES = "examples.services.images"
BILLING = "examples.services.billing"
JITTER = 0.1
"""Seconds between the control plane's dispatch and the task's first line, at most."""


async def worker_ids(client: fastworker.Client) -> set[str]:
    """The node-id prefixes (as in TaskResult.worker) of the subworkers joined now."""
    stats = await client.stats()
    return {w.id.split("/")[0] for w in stats.workers if w.id != "local"}


async def gone_from(client: fastworker.Client, worker_id: str) -> bool:
    """Whether ``worker_id`` has left the control plane's worker table."""
    return worker_id not in await worker_ids(client)


async def waiting_for(client: fastworker.Client, name: str) -> fastworker.ClusterStats | None:
    """The cluster's stats once tasks named ``name`` are shown as waiting, else None."""
    stats = await client.stats()
    return stats if name in stats.waiting else None


@asynccontextmanager
async def subworker(
    client: fastworker.Client, url: str, tasks: str, *extra: str
) -> AsyncIterator[tuple[Background, str]]:
    """Start a subworker process; yield it and its worker id once it has joined."""
    before = await worker_ids(client)
    command = [*FASTWORKER, "subworker", "--join", url, "--tasks", tasks, *extra]
    async with background(command) as process:

        async def joined() -> set[str]:
            return await worker_ids(client) - before

        (worker,) = await wait_until(
            joined, timeout=60, what=f"a subworker for {tasks} joined", observe=lambda: str(process)
        )
        yield process, worker


async def test_two_services_behind_a_control_plane_that_imports_neither() -> None:
    """The README's commands: every task runs on a subworker of its own service; queues pin
    images.archive to the "bulk" subworker; max_concurrency=2 and rate_limit="5/s" hold
    across two images subworkers (measured from the tasks' own start and end times);
    concurrent submissions with one unique key run once; an unknown name is refused; the
    billing service leaves (its task waits queued, shown as waiting) and comes back."""
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    plane = [*FASTWORKER, "control-plane", "--port", str(port), "--no-discovery"]
    plane += ["--local-concurrency", "0"]
    async with background(plane) as cp:
        with trio.fail_after(120):
            await cp.wait_for_output("none of its own")
            async with (
                fastworker.open_client(url, connect_timeout=30.0) as client,
                subworker(client, url, IMAGES, "--queues", "images") as (_, images_1),
                subworker(client, url, IMAGES, "--queues", "images,bulk") as (_, images_2),
            ):
                async with subworker(client, url, BILLING) as (billing, billing_id):
                    await routed_limited_and_unique(client, billing_id, images_1, images_2)
                    # The billing service leaves ...
                    assert await billing.interrupt() == 0, str(billing)
                await wait_until(
                    lambda: gone_from(client, billing_id),
                    timeout=60,
                    what="the billing service gone from the worker table",
                )
                # ... its task waits queued, shown as waiting, and runs once it is back.
                # No worker left has billing.invoice, so nothing can run it: the control
                # plane shows it as waiting (at admission) and it stays queued.
                waiting = await client.delay("billing.invoice", "late")
                stats = await wait_until(
                    lambda: waiting_for(client, "billing.invoice"),
                    timeout=60,
                    what="billing.invoice shown as waiting",
                )
                assert await client.status(waiting) is TaskStatus.QUEUED
                assert stats.waiting == {"billing.invoice": 1}
                async with subworker(client, url, BILLING) as (_, billing_again):
                    result = await client.result(waiting)
                    assert result.value == "invoice for late"
                    assert result.worker == billing_again

                    # The README's client script, against the same system.
                    done = await run([PYTHON, str(REPO / "examples/services/client.py"), url])
                    assert done.returncode == 0, done.stderr
                    assert "charge ids equal: True" in done.stdout
                    assert "refused: no task named 'billing.refund'" in done.stdout
                    assert "archive -> archived cat.png" in done.stdout


async def routed_limited_and_unique(
    client: fastworker.Client, billing_id: str, images_1: str, images_2: str
) -> None:
    """Routing, queues, both limits, unique keys and refusal, on the running system."""
    # Routing: each task on its own service.
    invoices = [await client.delay("billing.invoice", f"c{i}") for i in range(6)]
    archives = [await client.delay("images.archive", f"p{i}") for i in range(6)]
    results = await client.gather(invoices + archives)
    assert all(r.ok for r in results)
    assert {r.worker for r in results[:6]} == {billing_id}
    assert {r.worker for r in results[6:]} == {images_2}  # only it serves "bulk"

    # Cluster-wide max_concurrency across both images subworkers.
    resized = await client.gather(
        await client.delay_batch([("images.resize", (f"r{i}.png", 64, 0.3)) for i in range(10)])
    )
    assert {r.worker for r in resized} <= {images_1, images_2}
    spans = [r.value for r in resized]
    points = [(s["started"], 1) for s in spans] + [(s["ended"], -1) for s in spans]
    running = peak = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start
        running += step
        peak = max(peak, running)
    assert peak <= 2, spans
    assert peak == 2  # the limit is used, not just respected

    # Cluster-wide rate limit: at most 5 starts in any one-second window. The control
    # plane counts a start when it dispatches; the task's own clock reads it a little
    # later (one hop), so the window checked here allows that much jitter.
    thumbs = await client.delay_batch([("images.thumbnail", (f"t{i}.png",)) for i in range(12)])
    starts = sorted(r.value["started"] for r in await client.gather(thumbs))
    for at in starts:
        assert len([t for t in starts if at <= t < at + 1.0 - JITTER]) <= 5, starts
    assert starts[-1] - starts[0] >= 2.0 - JITTER  # 12 starts at 5/s span two windows

    # Unique keys under concurrent submission: one id, one run.
    ids: list[str] = []

    async def charge() -> None:
        ids.append(await client.delay("billing.charge", "cus_1", 500, unique_key="order-7"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(charge)
    assert len(set(ids)) == 1
    assert (await client.result(ids[0])).value["cents"] == 500
    assert (await client.stats()).submitted == 12 + 10 + 12 + 1

    # Unknown names are refused at once.
    try:
        await client.delay("billing.refund", "cus_1")
    except fastworker.TaskNotRegistered as exc:
        assert "billing.refund" in str(exc)
    else:
        raise AssertionError("an unknown task name was accepted")
