"""``fastworker bench --defaults [--compare huey]``: speed as users get it.

The system under test is ``fastworker run-actor-system`` with no tuning flags (its
defaults: 2 subworkers x 8 slots, default queue and result cache), on a free loopback
port, without discovery beacons (so concurrent runs on one host never meet). The client
is a separate process (``fastworker._bench_client``), as a user's application is. This
process only starts the processes and samples their memory.

With ``--compare huey``, huey + Redis runs in the same invocation (interleaved with
FastWorker, run by run), doing the same work with the same client code shape, and the
ratios are printed. When huey, redis (the Python client) or ``redis-server`` are missing
it says so and skips the comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import trio

from ._bench_common import BENCH_TASKS
from ._bench_common import free_port as _free_port
from ._usage import UsageError

DEFAULT_N = 8_000
"""Tasks per throughput run: results are gathered after submitting them all, so the
run must fit the default result cache (10,000 results, with the warm-up's)."""

WARMUP = 500


@attrs.define
class SystemRun:
    """One run of one system."""

    system: str
    batched: float = 0.0
    pipelined: float = 0.0
    seq_p50_ms: float = 0.0
    seq_p99_ms: float = 0.0
    seq_calls: int = 0
    idle_rss_mib: float = 0.0
    load_rss_mib: float = 0.0
    processes: int = 0
    client_peak_rss_mib: float = 0.0
    load_average: str = ""
    cpu_us_per_task: dict[str, list[float]] = attrs.Factory(dict)
    """Per phase: [system processes, client process] CPU microseconds per task."""


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as handle:
                    found += [int(c) for c in handle.read().split()]
        except OSError:
            pass
    return found


def _rss_mib(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += float(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


def _load_average() -> str:
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


def huey_missing() -> str | None:
    """Why the huey comparison cannot run here, or None."""
    missing = [m for m in ("huey", "redis") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install huey redis)"
    if shutil.which("redis-server") is None:
        return "redis-server not found on PATH (apt-get install redis-server)"
    return None


async def _stop(process: trio.Process, sig: int = signal.SIGINT) -> None:
    if process.returncode is None:
        process.send_signal(sig)
        with trio.move_on_after(15):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


def _cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (threads included), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

PHASES = ("batched", "pipelined", "sequential")


async def _run_client(
    spec: dict[str, Any], roots: Callable[[], list[int]], run: SystemRun, env: dict[str, str]
) -> None:
    """Run the client process; sample the system's RSS and CPU time while it works."""
    cmd = [sys.executable, "-m", "fastworker._bench_client", json.dumps(spec)]
    run.idle_rss_mib = _rss_mib([p for r in roots() for p in _tree(r)])
    done = trio.Event()
    peak = 0.0
    processes = 0
    marks: dict[str, float] = {}
    stdout = bytearray()
    stderr = bytearray()

    def system_pids() -> list[int]:
        return [p for r in roots() for p in _tree(r)]

    async def sample() -> None:
        nonlocal peak, processes
        while not done.is_set():
            pids = system_pids()
            processes = max(processes, len(pids))
            peak = max(peak, _rss_mib(pids))
            with trio.move_on_after(0.05):
                await done.wait()

    async def read_out(stream: Any) -> None:
        async for chunk in stream:
            stdout.extend(chunk)

    async def read_err(stream: Any) -> None:
        pending = b""
        async for chunk in stream:
            stderr.extend(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b"phase "):
                    marks[line[6:].decode().strip()] = _cpu_seconds(system_pids())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        process = await trio.lowlevel.open_process(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        try:
            async with trio.open_nursery() as readers:
                readers.start_soon(read_out, process.stdout)
                readers.start_soon(read_err, process.stderr)
            await process.wait()
        finally:
            done.set()
            if process.returncode is None:
                process.kill()
    if process.returncode != 0:
        raise RuntimeError(
            f"the {spec['kind']} bench client failed (exit {process.returncode}):\n"
            + stderr.decode(errors="replace")[-3000:]
        )
    figures = json.loads(stdout.decode().strip().splitlines()[-1])
    client_cpu = figures.pop("client_cpu", {})
    for key, value in figures.items():
        setattr(run, key, value)
    run.load_rss_mib = peak
    run.processes = processes
    run.load_average = _load_average()
    tasks = {"batched": spec["n"], "pipelined": spec["n"], "sequential": run.seq_calls}
    order = [*PHASES, "done"]
    for phase, following in itertools.pairwise(order):
        if phase in marks and following in marks and tasks[phase]:
            system = (marks[following] - marks[phase]) / tasks[phase] * 1e6
            client = client_cpu.get(phase, 0.0) / tasks[phase] * 1e6
            run.cpu_us_per_task[phase] = [round(system, 1), round(client, 1)]


def _clean_env(**extra: str) -> dict[str, str]:
    # FASTWORKER_* settings meant for the user's own cluster must not reach the systems.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    env.update(extra)
    return env


async def bench_fastworker(args: argparse.Namespace) -> SystemRun:
    """``run-actor-system`` with its defaults, the client in another process."""
    port = _free_port()
    cluster = f"bench-{uuid.uuid4().hex[:12]}"
    cmd = [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--tasks",
        BENCH_TASKS,
        "--port",
        str(port),
        "--cluster",
        cluster,
        "--no-discovery",
        "--log-level",
        "warning",
    ]
    env = _clean_env()
    system_env = dict(env)
    cwd = None
    if getattr(args, "system_path", None):
        cwd = args.system_path  # `python -m` puts the working directory first on sys.path
        # A/B: the system from another source tree; the client stays this version.
        system_env["PYTHONPATH"] = os.pathsep.join(
            [args.system_path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
    process = await trio.lowlevel.open_process(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=system_env, cwd=cwd
    )
    run = SystemRun("fastworker")
    try:
        spec = {
            "kind": "fastworker",
            "url": f"ws://127.0.0.1:{port}",
            "cluster": cluster,
            "subworkers": 2,
            "n": args.n,
            "chunk": args.chunk,
            "senders": args.senders,
            "seconds": args.seconds,
            "warmup": WARMUP,
        }
        await _run_client(spec, lambda: [process.pid], run, env)
    finally:
        await _stop(process)
    return run


async def bench_huey(args: argparse.Namespace) -> SystemRun:
    """huey's consumer + redis-server, the client in another process."""
    count, _, kind = str(args.huey_workers).partition(":")
    redis_port = _free_port()
    env = _clean_env(FASTWORKER_BENCH_REDIS_PORT=str(redis_port))
    redis = await trio.lowlevel.open_process(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    consumer = None
    run = SystemRun("huey")
    try:
        await _wait_port(redis_port)
        consumer = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "huey.bin.huey_consumer",
                "fastworker._bench_huey.huey",
                "-w",
                count or "2",
                "-k",
                kind or "process",
                "-q",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        spec = {
            "kind": "huey",
            "url": redis_port,
            "n": args.n,
            "chunk": args.chunk,
            "senders": args.senders,
            "seconds": args.seconds,
            "warmup": WARMUP,
        }
        assert consumer is not None
        roots = [redis.pid, consumer.pid]
        await _run_client(spec, lambda: roots, run, env)
    finally:
        if consumer is not None:
            await _stop(consumer)
        await _stop(redis, signal.SIGTERM)
    return run


async def _wait_port(port: int) -> None:
    with trio.fail_after(20):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


def _median(runs: list[SystemRun], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


ROWS = [
    ("batched tasks/s", "batched", "{:,.0f}", ">= 25x"),
    ("pipelined tasks/s", "pipelined", "{:,.0f}", ">= 9x"),
    ("sequential call p50 ms", "seq_p50_ms", "{:.2f}", "<= 0.5x"),
    ("sequential call p99 ms", "seq_p99_ms", "{:.2f}", "<= 3 ms"),
    ("system RSS under load MiB", "load_rss_mib", "{:.0f}", "<= 1x"),
]

CPU_ROWS = [
    ("CPU us/task batched", "batched"),
    ("CPU us/task pipelined", "pipelined"),
    ("CPU us/call sequential", "sequential"),
]


def format_defaults(ours: list[SystemRun], theirs: list[SystemRun], skipped: str | None) -> str:
    """The issue's table: medians of the runs, with ranges and ratios."""
    runs = len(ours)
    head = f"{'':<27} {'fastworker':>22}"
    if theirs:
        head += f" {'huey + Redis':>22} {'ratio':>8} {'goal':>8}"
    lines = [
        f"fastworker bench --defaults: run-actor-system with its defaults (2 subworkers x 8 "
        f"slots), client in its own process; medians of {runs} run(s) [min-max]",
        head,
        "-" * len(head),
    ]

    def cell(rs: list[SystemRun], field: str, fmt: str) -> str:
        values = [getattr(r, field) for r in rs]
        text = fmt.format(statistics.median(values))
        if len(values) > 1:
            text += f" [{fmt.format(min(values))}-{fmt.format(max(values))}]"
        return text

    for label, field, fmt, goal in ROWS:
        line = f"{label:<27} {cell(ours, field, fmt):>22}"
        if theirs:
            mine, other = _median(ours, field), _median(theirs, field)
            ratio = mine / other if other else float("nan")
            ratio_text = f"{ratio:.2f}x"
            line += f" {cell(theirs, field, fmt):>22} {ratio_text:>8} {goal:>8}"
        lines.append(line)
    for label, phase in CPU_ROWS:
        # System processes + client process: what a task costs whatever else the machine
        # runs (wall-clock figures move with other load on a shared machine; these less).
        def cpu(rs: list[SystemRun], phase: str = phase) -> str:
            values = [sum(r.cpu_us_per_task[phase]) for r in rs if phase in r.cpu_us_per_task]
            parts = [r.cpu_us_per_task[phase] for r in rs if phase in r.cpu_us_per_task]
            if not values:
                return "-"
            middle = sorted(parts, key=sum)[len(parts) // 2]
            return f"{statistics.median(values):,.0f} ({middle[0]:,.0f}+{middle[1]:,.0f})"

        line = f"{label:<27} {cpu(ours):>22}"
        if theirs:
            line += f" {cpu(theirs):>22}"
        lines.append(line)
    lines.append("CPU figures: system processes + client process, microseconds per task")
    lines.append(
        "load average during the runs: "
        + "; ".join(f"{r.system} {r.load_average}" for r in ours + theirs)
    )
    if theirs:
        lines.append(
            f"system processes: fastworker {ours[0].processes}, huey + Redis "
            f"{theirs[0].processes} (client processes not counted)"
        )
    if skipped:
        lines.append(f"huey comparison skipped: {skipped}")
    return "\n".join(lines)


async def run_defaults(args: argparse.Namespace) -> int:
    """Run ``--runs`` rounds (FastWorker, then huey if asked) and print the table."""
    if args.n is None:
        args.n = DEFAULT_N
    if args.n + WARMUP > 10_000:
        raise UsageError(
            f"--n {args.n} with --defaults: results are gathered after all are submitted, "
            f"so n + {WARMUP} (warm-up) must fit the default result cache of 10,000"
        )
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    skipped = huey_missing() if args.compare == "huey" else None
    if skipped:
        print(f"bench: huey comparison skipped: {skipped}", file=sys.stderr, flush=True)
    ours: list[SystemRun] = []
    theirs: list[SystemRun] = []
    for index in range(args.runs):
        print(
            f"bench: run {index + 1}/{args.runs}: fastworker defaults, n={args.n} ...",
            file=sys.stderr,
            flush=True,
        )
        ours.append(await bench_fastworker(args))
        if args.compare == "huey" and not skipped:
            print(
                f"bench: run {index + 1}/{args.runs}: huey + Redis ...", file=sys.stderr, flush=True
            )
            theirs.append(await bench_huey(args))
    if args.json:
        print(
            json.dumps(
                {
                    "fastworker": [attrs.asdict(r) for r in ours],
                    "huey": [attrs.asdict(r) for r in theirs],
                    "huey_skipped": skipped,
                },
                indent=2,
            )
        )
    else:
        print(format_defaults(ours, theirs, skipped))
    return 0
