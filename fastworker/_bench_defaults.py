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

from .bench import BENCH_TASKS, _free_port

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


async def _run_client(
    spec: dict[str, Any], roots: Callable[[], list[int]], run: SystemRun, env: dict[str, str]
) -> None:
    """Run the client process; sample the system's total RSS while it works."""
    cmd = [sys.executable, "-m", "fastworker._bench_client", json.dumps(spec)]
    run.idle_rss_mib = _rss_mib([p for r in roots() for p in _tree(r)])
    done = trio.Event()
    peak = 0.0
    processes = 0

    async def sample() -> None:
        nonlocal peak, processes
        while not done.is_set():
            pids = [p for r in roots() for p in _tree(r)]
            processes = max(processes, len(pids))
            peak = max(peak, _rss_mib(pids))
            with trio.move_on_after(0.05):
                await done.wait()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        try:
            result = await trio.run_process(
                cmd, capture_stdout=True, capture_stderr=True, env=env, check=False
            )
        finally:
            done.set()
    if result.returncode != 0:
        raise RuntimeError(
            f"the {spec['kind']} bench client failed (exit {result.returncode}):\n"
            + result.stderr.decode(errors="replace")[-3000:]
        )
    figures = json.loads(result.stdout.decode().strip().splitlines()[-1])
    for key, value in figures.items():
        setattr(run, key, value)
    run.load_rss_mib = peak
    run.processes = processes
    run.load_average = _load_average()


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
    process = await trio.lowlevel.open_process(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
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
        from ._cli import UsageError

        raise UsageError(
            f"--n {args.n} with --defaults: results are gathered after all are submitted, "
            f"so n + {WARMUP} (warm-up) must fit the default result cache of 10,000"
        )
    if args.runs < 1:
        from ._cli import UsageError

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
