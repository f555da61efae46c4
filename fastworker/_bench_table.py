"""``fastworker bench``'s default mode: the table, one row per subworker count.

Each row starts ``run-actor-system`` as a real process, connects a client from this
process, runs the phases of ``_bench_phases`` and samples the processes' memory and
CPU time; with ``--dashboard``, each row runs without and with the page open.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from typing import Any

import attrs
import trio

from ._bench_client import percentiles
from ._bench_common import (
    ADD,
    children,
    cpu_seconds,
    free_port,
    start_system,
    status_kib,
    stop_system,
)
from ._bench_phases import batched, burst, client_kinds_p50, pipelined, sequential, wait_for_workers
from ._open_client import open_client


@attrs.define
class BenchRow:
    """The figures for one subworker count."""

    subworkers: int
    dashboard: bool = False
    batched: float = 0.0
    pipelined: float = 0.0
    seq_p50_ms: float = 0.0
    seq_p99_ms: float = 0.0
    seq_calls: int = 0
    cp_idle_rss_mib: float = 0.0
    cp_cpu_us_per_task: float = 0.0
    dashboard_cpu_share: float = 0.0
    """With the dashboard open: its share of the control plane's CPU in the throughput runs."""
    cp_peak_rss_mib: float = 0.0
    subworker_peak_rss_mib: list[float] = attrs.field(factory=list)
    client_peak_rss_mib: float = 0.0
    burst_seconds: float = 0.0
    seq_p50_asyncio_ms: float = 0.0
    seq_p50_blocking_ms: float = 0.0

    @property
    def total_peak_rss_mib(self) -> float:
        """Control plane plus subworkers."""
        return self.cp_peak_rss_mib + sum(self.subworker_peak_rss_mib)


async def _dashboard_cpu(base: str) -> float:
    """fastworker_dashboard_cpu_seconds_total from /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "fastworker_dashboard_cpu_seconds_total":
                return float(sample.value)
    return 0.0


async def _watch_page(base: str, updates: list[int], *, task_status: Any) -> None:
    """What a browser with the dashboard open does: load the page, follow its stream."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=None) as http:
        page = await http.get("/")
        page.raise_for_status()
        async with http.stream("GET", "/ui/stream") as stream:
            task_status.started()
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    json.loads(line[6:])
                    updates[0] += 1


async def bench_one(args: argparse.Namespace, subworkers: int, dashboard: bool = False) -> BenchRow:
    """Start a system with ``subworkers`` subworker processes and measure it.

    With ``dashboard``, the system serves its dashboard and this process follows the
    page's live stream throughout, as a browser with the page open would.
    """
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    dashboard_port = free_port() if dashboard else None
    process, journal_dir = await start_system(
        args, port, subworkers, args.local_concurrency, dashboard_port=dashboard_port
    )
    row = BenchRow(subworkers, dashboard)
    base = f"http://127.0.0.1:{dashboard_port}"
    updates = [0]
    try:
        async with open_client(url, connect_timeout=30.0) as client, trio.open_nursery() as page:
            with trio.fail_after(60):
                await wait_for_workers(client, subworkers)
            await trio.sleep(0.2)
            row.cp_idle_rss_mib = status_kib(process.pid, "VmRSS") / 1024
            if dashboard:
                await page.start(_watch_page, base, updates)
            # Warm-up: imports, code paths, connections.
            await client.gather(await client.delay_batch([(ADD, (i, 0)) for i in range(500)]))
            dashboard_cpu = await _dashboard_cpu(base) if dashboard else 0.0
            cpu = cpu_seconds([process.pid])
            row.batched = await batched(client, args.n, args.chunk)
            row.pipelined = await pipelined(client, args.n, args.senders)
            # CPU per task is steadier than tasks/s on a shared machine.
            spent = cpu_seconds([process.pid]) - cpu
            row.cp_cpu_us_per_task = spent / (2 * args.n) * 1e6
            if dashboard and spent > 0:
                row.dashboard_cpu_share = (await _dashboard_cpu(base) - dashboard_cpu) / spent
            if args.burst:
                row.burst_seconds = await burst(client, args.burst, args.burst_size)
            for field, value in percentiles(await sequential(client, args.seconds)).items():
                setattr(row, field, value)  # seq_calls, seq_p50_ms, seq_p99_ms
            if not getattr(args, "no_client_kinds", False):
                seconds = max(0.5, args.seconds / 2)
                row.seq_p50_asyncio_ms, row.seq_p50_blocking_ms = await trio.to_thread.run_sync(
                    client_kinds_p50, url, seconds
                )
            row.cp_peak_rss_mib = status_kib(process.pid, "VmHWM") / 1024
            row.subworker_peak_rss_mib = [
                status_kib(pid, "VmHWM") / 1024 for pid in children(process.pid)
            ]
            if dashboard and not updates[0]:
                raise AssertionError("the dashboard's live stream sent no update")
            page.cancel_scope.cancel()
    finally:
        await stop_system(process, journal_dir)
    row.client_peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def format_table(rows: list[BenchRow]) -> str:
    """The results as a plain-text table."""
    header = (
        f"{'subworkers':>10} {'dashboard':>9} {'batched/s':>11} {'pipelined/s':>12} "
        f"{'seq p50 ms':>11} {'seq p99 ms':>11} {'asyncio p50 ms':>16} {'blocking p50 ms':>16} "
        f"{'CP us/task':>10} {'CP idle MiB':>12} "
        f"{'CP peak MiB':>12} {'SW peak MiB':>14} {'total MiB':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        sw = "/".join(f"{x:.0f}" for x in r.subworker_peak_rss_mib) or "-"
        lines.append(
            f"{r.subworkers:>10} {'open' if r.dashboard else 'off':>9} {r.batched:>11,.0f} "
            f"{r.pipelined:>12,.0f} {r.seq_p50_ms:>11.3f} {r.seq_p99_ms:>11.3f} "
            f"{_versus(r.seq_p50_asyncio_ms, r.seq_p50_ms):>16} "
            f"{_versus(r.seq_p50_blocking_ms, r.seq_p50_ms):>16} "
            f"{r.cp_cpu_us_per_task:>10.1f} {r.cp_idle_rss_mib:>12.1f} {r.cp_peak_rss_mib:>12.1f} "
            f"{sw:>14} {r.total_peak_rss_mib:>10.1f}"
        )
    return "\n".join(lines)


def _versus(p50: float, trio_p50: float) -> str:
    """A client kind's p50 and its difference to the trio client's ("-" if not run)."""
    return f"{p50:.3f} ({p50 - trio_p50:+.2f})" if p50 else "-"


async def run_table(args: argparse.Namespace, counts: list[int]) -> int:
    """The default mode: one row per subworker count (and dashboard state), printed."""
    rows = []
    for count in counts:
        print(f"bench: {count} subworker(s), n={args.n} ...", file=sys.stderr, flush=True)
        rows.append(await bench_one(args, count))
        if args.dashboard:
            for turn in range(max(1, args.repeat)):
                if turn:
                    rows.append(await bench_one(args, count))
                print(
                    f"bench: {count} subworker(s), dashboard open ...", file=sys.stderr, flush=True
                )
                rows.append(await bench_one(args, count, dashboard=True))
    if args.json:
        print(
            json.dumps(
                [attrs.asdict(r) | {"total_peak_rss_mib": r.total_peak_rss_mib} for r in rows],
                indent=2,
            )
        )
    else:
        print(format_table(rows))
        for r in rows:
            if r.burst_seconds:
                print(
                    f"burst, {r.subworkers} subworker(s): {args.burst} results of "
                    f"{args.burst_size} bytes finishing at once, all received in "
                    f"{r.burst_seconds:.2f} s"
                )
        if args.dashboard:
            pairs = list(zip(rows[::2], rows[1::2], strict=True))
            for count in counts:
                mine = [(off, on) for off, on in pairs if off.subworkers == count]

                def median(field: str, pairs: list[tuple[BenchRow, BenchRow]] = mine) -> str:
                    changes = [
                        (getattr(on, field) - getattr(off, field)) / getattr(off, field) * 100
                        for off, on in pairs
                        if getattr(off, field)
                    ]
                    return f"{statistics.median(changes):+.1f}%" if changes else "n/a"

                share = statistics.median(on.dashboard_cpu_share for _, on in mine) * 100
                print(
                    f"dashboard open, {count} subworker(s), median of {len(mine)}: batched "
                    f"{median('batched')}, pipelined {median('pipelined')}, control plane CPU "
                    f"per task {median('cp_cpu_us_per_task')} (the dashboard's own share of "
                    f"it: {share:.1f}%), idle RSS {mine[0][0].cp_idle_rss_mib:.1f} -> "
                    f"{mine[0][1].cp_idle_rss_mib:.1f} MiB"
                )
    return 0
