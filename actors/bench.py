"""Runtime microbenchmark: ``python -m actors.bench``.

Reports, on this machine:

- local tell throughput between two actors (``await tell`` and ``tell_nowait`` bursts);
- remote ask round trip over a loopback websocket to another process (p50/p99);
- remote tell throughput with natural batching (64 concurrent senders, and one sender
  using ``tell_nowait`` bursts).

The remote side runs in a child process (``python -m actors.bench --serve``), so the
two ends use two cores as real nodes would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

import attrs
import trio
import trio.lowlevel

import actors


@actors.message("bench.Ping")
@attrs.frozen
class Ping:
    """A small message."""

    n: int
    payload: str = "x"


@actors.message("bench.WaitCount")
@attrs.frozen
class WaitCount:
    """Answer once the counter has seen ``n`` messages in total."""

    n: int


@actors.message("bench.Reset")
@attrs.frozen
class Reset:
    """Set the counter back to 0."""


class Echo(actors.Actor):
    """Answers a Ping with its number."""

    async def receive(self, ctx: actors.Context, message: Any) -> Any:
        return message.n


class Counter(actors.Actor):
    """Counts Pings; answers WaitCount when enough arrived."""

    def __init__(self) -> None:
        self.count = 0
        self.waiting: list[tuple[int, Any]] = []

    async def handle_batch(self, ctx: actors.Context, batch: list[actors.Delivery]) -> None:
        for delivery in batch:
            message = delivery.message
            if type(message) is Ping:
                self.count += 1
            elif type(message) is WaitCount:
                assert delivery.reply is not None
                self.waiting.append((message.n, delivery.reply))
            elif type(message) is Reset:
                self.count = 0
                if delivery.reply is not None:
                    delivery.reply.resolve(None)
        if self.waiting:
            still = []
            for n, reply in self.waiting:
                if self.count >= n:
                    reply.resolve(self.count)
                else:
                    still.append((n, reply))
            self.waiting = still


async def serve() -> None:
    """Run the remote side: print the URL, serve until stdin closes."""
    async with actors.open_actor_system(role="bench-server") as system:
        await system.spawn("echo", Echo)
        await system.spawn("counter", Counter, capacity=1_000_000)
        url = await system.listen("ws://127.0.0.1:0")
        print(url, flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        system.nursery.cancel_scope.cancel()


async def local_tell(n: int) -> dict[str, float]:
    """Tell throughput between two local actors."""
    results = {}
    async with actors.open_actor_system() as system:
        counter = await system.spawn("counter", Counter, capacity=10_000)
        start = time.perf_counter()
        for i in range(n):
            await counter.tell(Ping(i))
        await counter.ask(WaitCount(n))
        results["local_tell_await_per_s"] = n / (time.perf_counter() - start)
        await counter.ask(Reset())
        start = time.perf_counter()
        sent = 0
        while sent < n:
            burst = min(1000, n - sent)
            for i in range(burst):
                counter.tell_nowait(Ping(i))
            sent += burst
            await trio.lowlevel.checkpoint()
        await counter.ask(WaitCount(n))
        results["local_tell_nowait_per_s"] = n / (time.perf_counter() - start)
        system.nursery.cancel_scope.cancel()
    return results


async def remote(n_ask: int, n_tell: int) -> dict[str, float]:
    """Ask latency and tell throughput against a server process."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "actors.bench", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    results: dict[str, float] = {}
    try:
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                if not chunk:
                    raise RuntimeError("the bench server exited early")
                line += chunk
        url = line.decode().strip()
        async with actors.open_actor_system(role="bench-client") as system:
            peer = await system.connect(url)
            echo = peer.ref("echo")
            counter = peer.ref("counter")
            for i in range(200):
                await echo.ask(Ping(i))
            latencies = []
            for i in range(n_ask):
                start = time.perf_counter()
                await echo.ask(Ping(i))
                latencies.append(time.perf_counter() - start)
            latencies.sort()
            results["remote_ask_p50_ms"] = statistics.median(latencies) * 1000
            results["remote_ask_p99_ms"] = latencies[int(len(latencies) * 0.99)] * 1000

            senders = 64
            per_sender = n_tell // senders

            async def sender() -> None:
                for i in range(per_sender):
                    await counter.tell(Ping(i))

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(senders):
                    nursery.start_soon(sender)
            await counter.ask(WaitCount(per_sender * senders))
            elapsed = time.perf_counter() - start
            results["remote_tell_64_senders_per_s"] = per_sender * senders / elapsed
            link = peer.link
            if link is not None:
                results["envelopes_per_frame"] = link.envelopes_sent / max(1, link.frames_sent)

            await counter.ask(Reset())
            start = time.perf_counter()
            sent = 0
            while sent < n_tell:
                burst = min(1000, n_tell - sent)
                for i in range(burst):
                    while True:
                        try:
                            counter.tell_nowait(Ping(i))
                            break
                        except actors.MailboxFull:
                            await trio.lowlevel.checkpoint()
                sent += burst
                await trio.lowlevel.checkpoint()
            await counter.ask(WaitCount(n_tell))
            results["remote_tell_nowait_bursts_per_s"] = n_tell / (time.perf_counter() - start)
            system.nursery.cancel_scope.cancel()
    finally:
        if process.stdin is not None:
            await process.stdin.aclose()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
    return results


async def main(args: argparse.Namespace) -> None:
    """Run every measurement and print the figures."""
    results: dict[str, float] = {}
    results.update(await local_tell(args.n))
    results.update(await remote(args.asks, args.n))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:34} {value:>14,.3f}")


def cli() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(prog="python -m actors.bench", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="messages per throughput run")
    parser.add_argument("--asks", type=int, default=5_000, help="sequential asks")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        trio.run(serve)
    else:
        trio.run(main, args)


if __name__ == "__main__":
    cli()
