"""``fastworker bench``: measure a whole system on this machine.

It starts ``fastworker run-actor-system`` as a real process (the control plane plus N
subworker processes on a free loopback port), connects a client from this process,
runs a trivial ``add`` task and checks every result, and prints one table:

- batched: ``delay_batch`` in chunks, N tasks, from the first submit to the last
  result available (tasks/s);
- pipelined: single ``delay`` calls from 64 concurrent senders, then all results
  (tasks/s);
- sequential: ``call`` one at a time, round-trip latency p50/p99 (ms);
- by client kind: sequential ``call`` p50 through the asyncio and blocking clients,
  with the difference to the trio client's (both run their trio side in the
  process's shared trio thread);
- peak RSS of each process, and the control plane's RSS when idle;
- with ``--burst N``: N tasks each returning ``--burst-size`` bytes finish at the same
  moment (more than one frame holds); the time from that moment until every result
  reached the client, checked.

Run it for 0, 1 and 2 subworkers with ``--subworkers 0,1,2`` (the default).

``--workflows`` measures workflows instead: a chord of ``--n`` trivial members (one
submission, the callback sums the values) against the batched throughput of as many
independent tasks on the same system, and the control plane's memory per pending
workflow member (``--memory-members`` members queued with no worker to run them),
next to its memory per pending independent task.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import attrs
import trio

from ._bench_common import BENCH_TASKS
from ._bench_common import free_port as _free_port
from ._usage import UsageError

ADD = "bench.add"
TOTAL = "bench.total"
BLOB = "bench.blob"


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's flags."""
    parser.add_argument(
        "--subworkers", default="0,1,2", help="comma-separated subworker counts to run"
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="tasks per throughput run (default 20,000; 8,000 with --defaults, within the "
        "default result cache of 10,000)",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="sequential run length")
    parser.add_argument("--chunk", type=int, default=1000, help="delay_batch chunk size")
    parser.add_argument("--senders", type=int, default=64, help="pipelined senders")
    parser.add_argument("--concurrency", type=int, default=8, help="slots per subworker")
    parser.add_argument(
        "--local-concurrency", type=int, default=8, help="control plane slots (0 subworkers)"
    )
    parser.add_argument("--journal", action="store_true", help="run with a journal")
    parser.add_argument(
        "--no-client-kinds",
        action="store_true",
        help="skip the sequential p50 through the asyncio and blocking clients",
    )
    parser.add_argument(
        "--workflows",
        action="store_true",
        help="measure a chord of --n members against --n independent tasks, and memory "
        "per pending workflow member",
    )
    parser.add_argument(
        "--memory-members",
        type=int,
        default=50_000,
        help="pending members for the memory figure (--workflows)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="run each row twice, without and with the dashboard open (a reader of the "
        "page's live stream), and print the change",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="with --dashboard: alternate the off/on pair this many times; the changes "
        "printed are medians (a shared machine is noisy)",
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="measure exactly what a user gets: run-actor-system with no tuning flags, "
        "the client in its own process",
    )
    parser.add_argument(
        "--compare",
        choices=["huey"],
        help="with --defaults: run huey + Redis in the same run and print ratios",
    )
    parser.add_argument(
        "--runs", type=int, default=1, help="with --defaults: runs of each system (medians)"
    )
    parser.add_argument(
        "--system-path",
        metavar="DIR",
        help=argparse.SUPPRESS,  # run the system from another source tree (A/B of two versions)
    )
    parser.add_argument(
        "--huey-workers",
        default="2:process",
        help="with --compare huey: huey_consumer workers as COUNT:TYPE (thread or process)",
    )
    parser.add_argument(
        "--burst", type=int, default=0, help="also: N large results finishing at once (0: off)"
    )
    parser.add_argument(
        "--burst-size", type=int, default=1024 * 1024 - 1024, help="bytes per burst result"
    )
    parser.add_argument(
        "--dispatch",
        action="store_true",
        help="measure the control plane's dispatch cost per task in process instead "
        "(--names task names plus a rate-limited one, --n tasks)",
    )
    parser.add_argument("--names", type=int, default=20, help="task names in --dispatch")


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


def _status_kib(pid: int, field: str) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


async def _wait_for_workers(client: Any, subworkers: int) -> None:
    while True:
        stats = await client.stats()
        remote = [w for w in stats.workers if w.id != "local"]
        if len(remote) >= subworkers:
            return
        await trio.sleep(0.05)


def _check(results: list[Any], expected: list[int]) -> None:
    bad = [
        (r.task_id, r.status.value, r.value, e)
        for r, e in zip(results, expected, strict=True)
        if r.value != e
    ]
    if bad:
        raise AssertionError(f"{len(bad)} wrong results, e.g. {bad[:3]}")


async def _batched(client: Any, n: int, chunk: int) -> float:
    start = time.perf_counter()
    ids: list[str] = []
    for base in range(0, n, chunk):
        items = [(ADD, (i, 1)) for i in range(base, min(n, base + chunk))]
        ids += await client.delay_batch(items)
    results = await client.gather(ids)
    elapsed = time.perf_counter() - start
    _check(results, [i + 1 for i in range(n)])
    return n / elapsed


async def _pipelined(client: Any, n: int, senders: int) -> float:
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
    _check(results, [i + 2 for i in range(n)])
    return n / elapsed


async def _sequential(client: Any, seconds: float) -> list[float]:
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


async def _burst(client: Any, n: int, size: int) -> float:
    """Seconds from the moment ``n`` results of ``size`` bytes are ready to all received."""
    at = time.time() + 1.0 + n * 0.002
    ids = await client.delay_batch([(BLOB, (size, at)) for _ in range(n)])
    results = await client.gather(ids)
    elapsed = time.time() - at
    bad = [r for r in results if r.value is None or len(r.value) != size]
    if bad:
        raise AssertionError(f"{len(bad)} of {n} burst results missing or wrong: {bad[0]}")
    return elapsed


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
    from ._client import open_client

    port = _free_port()
    url = f"ws://127.0.0.1:{port}"
    dashboard_port = _free_port() if dashboard else None
    process, journal_dir = await _start(
        args, port, subworkers, args.local_concurrency, dashboard_port=dashboard_port
    )
    row = BenchRow(subworkers, dashboard)
    base = f"http://127.0.0.1:{dashboard_port}"
    updates = [0]
    try:
        async with open_client(url, connect_timeout=30.0) as client, trio.open_nursery() as page:
            with trio.fail_after(60):
                await _wait_for_workers(client, subworkers)
            await trio.sleep(0.2)
            row.cp_idle_rss_mib = _status_kib(process.pid, "VmRSS") / 1024
            if dashboard:
                await page.start(_watch_page, base, updates)
            # Warm-up: imports, code paths, connections.
            await client.gather(await client.delay_batch([(ADD, (i, 0)) for i in range(500)]))
            dashboard_cpu = await _dashboard_cpu(base) if dashboard else 0.0
            cpu = _cpu_seconds(process.pid)
            row.batched = await _batched(client, args.n, args.chunk)
            row.pipelined = await _pipelined(client, args.n, args.senders)
            # CPU per task is steadier than tasks/s on a shared machine.
            spent = _cpu_seconds(process.pid) - cpu
            row.cp_cpu_us_per_task = spent / (2 * args.n) * 1e6
            if dashboard and spent > 0:
                row.dashboard_cpu_share = (await _dashboard_cpu(base) - dashboard_cpu) / spent
            if args.burst:
                row.burst_seconds = await _burst(client, args.burst, args.burst_size)
            latencies = await _sequential(client, args.seconds)
            latencies.sort()
            row.seq_calls = len(latencies)
            row.seq_p50_ms = statistics.median(latencies) * 1000
            row.seq_p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            if not getattr(args, "no_client_kinds", False):
                seconds = max(0.5, args.seconds / 2)
                row.seq_p50_asyncio_ms, row.seq_p50_blocking_ms = await trio.to_thread.run_sync(
                    _client_kinds_p50, url, seconds
                )
            row.cp_peak_rss_mib = _status_kib(process.pid, "VmHWM") / 1024
            row.subworker_peak_rss_mib = [
                _status_kib(pid, "VmHWM") / 1024 for pid in _children(process.pid)
            ]
            if dashboard and not updates[0]:
                raise AssertionError("the dashboard's live stream sent no update")
            page.cancel_scope.cancel()
    finally:
        await _stop(process, journal_dir)
    row.client_peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


async def _start(
    args: argparse.Namespace,
    port: int,
    subworkers: int,
    local_concurrency: int,
    log_level: str = "warning",
    dashboard_port: int | None = None,
) -> tuple[trio.Process, str | None]:
    """Start ``run-actor-system`` on ``port``; returns the process and its journal dir.

    The dashboard is off unless ``dashboard_port`` is given.
    """
    concurrency = args.concurrency
    if getattr(args, "burst", 0):
        # Room for the whole burst at once (on one subworker or on the control plane).
        concurrency = max(concurrency, -(-args.burst // max(1, subworkers)))
        local_concurrency = max(local_concurrency, args.burst)
    cmd = [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--tasks",
        BENCH_TASKS,
        "--port",
        str(port),
        "--subworkers",
        str(subworkers),
        "--concurrency",
        str(concurrency),
        "--local-concurrency",
        str(local_concurrency),
        "--max-queue",
        str(max(100_000, 2 * args.n)),
        "--result-cache-size",
        str(max(10_000, 2 * args.n + 1000)),
        "--no-discovery",
        "--log-level",
        log_level,
        *(
            ["--dashboard", f"127.0.0.1:{dashboard_port}"]
            if dashboard_port is not None
            else ["--no-dashboard"]
        ),
    ]
    journal_dir = None
    if args.journal:
        import tempfile

        journal_dir = tempfile.mkdtemp(prefix="fastworker-bench-")
        cmd += ["--journal", os.path.join(journal_dir, "journal.db")]
    # The system under test is configured by the flags above only: FASTWORKER_* settings
    # meant for the user's own cluster (a secret file, a host, a journal...) would make it
    # differ from what this client expects (e.g. refuse it for want of the secret).
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.DEVNULL, env=env)
    return process, journal_dir


async def _stop(process: trio.Process, journal_dir: str | None) -> None:
    """Stop the system (SIGINT, then SIGKILL past 15 s) and remove its journal."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            with trio.move_on_after(15):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
        if journal_dir is not None:
            import shutil

            shutil.rmtree(journal_dir, ignore_errors=True)


# -- workflows (--workflows) ------------------------------------------------------------


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
    from ._canvas import chord, group, sig

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
    from ._client import open_client

    port = _free_port()
    process, journal_dir = await _start(args, port, subworkers, args.local_concurrency)
    row = WorkflowRow(subworkers, args.n)
    try:
        async with open_client(f"ws://127.0.0.1:{port}", connect_timeout=30.0) as client:
            with trio.fail_after(60):
                await _wait_for_workers(client, subworkers)
            await client.gather(await client.delay_batch([(ADD, (i, 0)) for i in range(500)]))
            await _chord_rate(client, 500)
            for _ in range(3):
                row.batched = max(row.batched, await _batched(client, args.n, args.chunk))
                row.chord = max(row.chord, await _chord_rate(client, args.n))
    finally:
        await _stop(process, journal_dir)
    return row


async def _pending_growth(args: argparse.Namespace, members: int, flows: bool) -> float:
    """Bytes of control-plane RSS per pending task (or workflow member) with no worker."""
    from ._client import open_client

    port = _free_port()
    # Its pending work is dropped at the end on purpose: no log about that.
    process, journal_dir = await _start(args, port, 0, 0, log_level="critical")
    try:
        async with open_client(f"ws://127.0.0.1:{port}", connect_timeout=30.0) as client:
            # Warm-up: code paths and buffers, then the baseline.
            if flows:
                await client.delay(_chord(100, -100))
            else:
                await client.delay_batch([(ADD, (i, 1)) for i in range(100)])
            await trio.sleep(0.5)
            before = _status_kib(process.pid, "VmRSS")
            for base in range(0, members, CHORD_SIZE):
                size = min(CHORD_SIZE, members - base)
                if flows:
                    await client.delay(_chord(size, base))
                else:
                    await client.delay_batch([(ADD, (base + i, 1)) for i in range(size)])
            while True:
                q = (await client.stats()).queued
                if q.critical + q.high + q.normal + q.low >= members + 100:
                    break
                await trio.sleep(0.05)
            await trio.sleep(0.5)
            after = _status_kib(process.pid, "VmRSS")
    finally:
        await _stop(process, journal_dir)
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


def _client_kinds_p50(url: str, seconds: float) -> tuple[float, float]:
    """Sequential ``call`` p50 (ms) through the asyncio client and the blocking client.

    Runs in a worker thread: ``asyncio.run`` for the one, plain calls for the other.
    """
    import asyncio

    from ._blocking import connect
    from ._client import open_client

    def check(value: Any, i: int) -> None:
        if value != i + 3:
            raise AssertionError(f"call returned {value!r}, expected {i + 3}")

    async def asyncio_run() -> list[float]:
        latencies: list[float] = []
        async with open_client(url, connect_timeout=30.0) as client:
            for i in range(50):  # warm-up
                check(await client.call(ADD, i, 3), i)
            deadline = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < deadline or len(latencies) < 20:
                start = time.perf_counter()
                value = await client.call(ADD, i, 3)
                latencies.append(time.perf_counter() - start)
                check(value, i)
                i += 1
        return latencies

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


async def run_bench(args: argparse.Namespace) -> int:
    """Run the bench for each subworker count and print the table (or JSON)."""
    if args.defaults or args.compare:
        from ._bench_defaults import run_defaults

        return await run_defaults(args)
    if args.n is None:
        args.n = 20_000
    if getattr(args, "dispatch", False):
        from ._bench_dispatch import dispatch_bench

        # Its own trio run (a fresh clock, nothing else scheduled), in a thread.
        figures = await trio.to_thread.run_sync(dispatch_bench, args.n, args.names)
        if args.json:
            print(json.dumps(figures, indent=2))
        else:
            print(
                f"dispatch cost per task ({args.names} task names and a rate-limited one, "
                f"n={args.n}, best of 5 runs, CPU time): "
                f"dispatch {figures['dispatch_us']:.2f} us, "
                f"accept + dispatch + completion {figures['total_us']:.2f} us"
            )
        return 0
    try:
        counts = [int(x) for x in str(args.subworkers).split(",") if x.strip()]
    except ValueError:
        raise UsageError("--subworkers takes comma-separated numbers, e.g. 0,1,2") from None
    if args.workflows:
        return await run_workflow_bench(args, counts)
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
