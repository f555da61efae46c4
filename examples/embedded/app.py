"""A trio application that hosts the FastWorker control plane itself.

The control plane runs inside this process (``fastworker.open_control_plane``) next
to the application's own work: a loop that submits a task every second and prints
each result as it arrives. With no subworker connected, the control plane runs the
tasks itself (``local_concurrency`` slots); start subworker processes and it hands
the work to them instead.

Run it from this directory::

    python app.py            # runs until Ctrl-C
    python app.py --once     # three rounds, then a graceful stop (used by the tests)
"""

from __future__ import annotations

import argparse
import itertools
import signal
import time

import trio

import fastworker


async def report(client: fastworker.Client, label: str, task_id: str, sent: float) -> None:
    """Wait for one task and print its outcome."""
    result = await client.result(task_id)
    took = (time.perf_counter() - sent) * 1000
    if result.ok:
        print(f"{label} = {result.value!r}  (ran on {result.worker}, {took:.1f} ms)", flush=True)
    else:
        print(f"{label} failed: {result.error}", flush=True)


async def submit_forever(client: fastworker.Client, rounds: int | None, interval: float) -> None:
    """The application's own work: submit two tasks per round, print results as they come."""
    numbers = itertools.count(1) if rounds is None else range(1, rounds + 1)
    async with trio.open_nursery() as nursery:
        for n in numbers:
            sent = time.perf_counter()
            square_id = await client.delay("embedded.square", n)
            fetch_id = await client.delay("embedded.fetch", n)
            nursery.start_soon(report, client, f"square({n})", square_id, sent)
            nursery.start_soon(report, client, f"fetch({n})", fetch_id, sent)
            await trio.sleep(interval)


async def stop_on_signal(cancel_scope: trio.CancelScope) -> None:
    """Ctrl-C or SIGTERM ends the work loop; the control plane then drains."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            print("stopping...", flush=True)
            cancel_scope.cancel()
            return


async def main(port: int, rounds: int | None, interval: float, discovery: bool) -> None:
    """Host the control plane, run the work loop, then drain and stop."""
    async with fastworker.open_control_plane(
        tasks=["embedded_tasks"], port=port, local_concurrency=4, discovery=discovery
    ) as control_plane:
        print(f"control plane listening at {control_plane.url}", flush=True)
        async with fastworker.open_client(control_plane.url) as client:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_on_signal, nursery.cancel_scope)
                await submit_forever(client, rounds, interval)
                nursery.cancel_scope.cancel()
        # Graceful stop: refuse new work, let running tasks finish (bounded).
        with trio.move_on_after(10):
            await control_plane.drain()
        stats = await control_plane.statistics()
        print(f"done: {stats.completed} tasks completed, {stats.failed} failed", flush=True)


def cli() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="listen port (0: pick a free one)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--once", action="store_true", help="run three quick rounds and stop")
    parser.add_argument("--no-discovery", action="store_true", help="do not send UDP beacons")
    args = parser.parse_args()
    rounds = 3 if args.once else None
    interval = 0.05 if args.once else args.interval
    trio.run(main, args.port, rounds, interval, not args.no_discovery)


if __name__ == "__main__":
    cli()
