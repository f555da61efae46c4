"""What ``bench`` and its modes share: the system under test as processes.

Starting ``run-actor-system`` with flags, a free loopback port and waiting for one,
reading a process tree's RSS and CPU time from ``/proc``, stopping a process by its
PID. Below every ``_bench_*`` mode, so none imports another for these.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import trio

BENCH_TASKS = "fastworker._bench_tasks"

ADD = "bench.add"
TOTAL = "bench.total"
BLOB = "bench.blob"

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_port(port: int) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port`` (callers own
    the timeout)."""
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            await trio.sleep(0.05)
            continue
        await stream.aclose()
        return


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``FASTWORKER_*`` settings, plus ``extra``.

    The system under test is configured by its flags only: settings meant for the
    user's own cluster (a secret file, a host, a journal...) would make it differ from
    what the bench's client expects (e.g. refuse it for want of the secret).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    env.update(extra)
    return env


def system_command(port: int, *flags: str, log_level: str = "warning") -> list[str]:
    """``run-actor-system`` with the bench's tasks on ``port``, no discovery, and ``flags``."""
    return [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--tasks",
        BENCH_TASKS,
        "--port",
        str(port),
        *flags,
        "--no-discovery",
        "--log-level",
        log_level,
    ]


async def stop_process(process: trio.Process, sig: int = signal.SIGINT) -> None:
    """Send ``sig``; past 15 s, SIGKILL. Returns once the process has exited.

    Shielded (it is cleanup, bounded by the 15 s and the kill): a cancelled bench
    still stops what it started instead of leaving a system running.
    """
    if process.returncode is None:
        with trio.CancelScope(shield=True):
            process.send_signal(sig)
            with trio.move_on_after(15):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def start_system(
    args: argparse.Namespace,
    port: int,
    subworkers: int,
    local_concurrency: int,
    log_level: str = "warning",
    dashboard_port: int | None = None,
) -> tuple[trio.Process, str | None]:
    """Start ``run-actor-system`` on ``port`` tuned by the bench's flags (the table and
    ``--workflows``; ``--defaults`` runs it untuned); returns the process and its
    journal dir. The dashboard is off unless ``dashboard_port`` is given.
    """
    concurrency = args.concurrency
    if getattr(args, "burst", 0):
        # Room for the whole burst at once (on one subworker or on the control plane).
        concurrency = max(concurrency, -(-args.burst // max(1, subworkers)))
        local_concurrency = max(local_concurrency, args.burst)
    flags = [
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
        *(
            ["--dashboard", f"127.0.0.1:{dashboard_port}"]
            if dashboard_port is not None
            else ["--no-dashboard"]
        ),
    ]
    journal_dir = None
    if args.journal:
        journal_dir = tempfile.mkdtemp(prefix="fastworker-bench-")
        flags += ["--journal", os.path.join(journal_dir, "journal.db")]
    cmd = system_command(port, *flags, log_level=log_level)
    process = await trio.lowlevel.open_process(cmd, stdout=subprocess.DEVNULL, env=clean_env())
    return process, journal_dir


async def stop_system(process: trio.Process, journal_dir: str | None) -> None:
    """Stop the system (SIGINT, then SIGKILL past 15 s) and remove its journal."""
    await stop_process(process)
    if journal_dir is not None:
        shutil.rmtree(journal_dir, ignore_errors=True)


# -- /proc ------------------------------------------------------------------------------


def status_kib(pid: int, field: str) -> float:
    """A ``/proc/PID/status`` field in KiB (``VmRSS``, ``VmHWM``); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def rss_mib(pids: list[int]) -> float:
    """The summed RSS of these processes, in MiB."""
    return sum(status_kib(pid, "VmRSS") for pid in pids) / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (threads included) so far, in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return ticks / _CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (none if it is gone)."""
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        found += children(found[index])
        index += 1
    return found


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``/proc/loadavg`` has them."""
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"
