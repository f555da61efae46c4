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

The modes live in small private modules: ``_bench_common`` (the system as processes),
``_bench_phases`` (the client's measurements), ``_bench_table`` (this table),
``_bench_workflows``, ``_bench_defaults`` (with ``_bench_client`` and ``_bench_huey``)
and ``_bench_dispatch``; this module holds the flags and picks the mode.
"""

from __future__ import annotations

import argparse
import json

import trio

from ._bench_common import ADD, BLOB, TOTAL
from ._bench_defaults import run_defaults
from ._bench_table import BenchRow, bench_one, format_table, run_table
from ._bench_workflows import (
    CHORD_SIZE,
    PendingMemory,
    WorkflowRow,
    bench_workflows,
    run_workflow_bench,
)
from ._usage import UsageError

__all__ = [
    "ADD",
    "BLOB",
    "CHORD_SIZE",
    "TOTAL",
    "BenchRow",
    "PendingMemory",
    "UsageError",
    "WorkflowRow",
    "add_bench_arguments",
    "bench_one",
    "bench_workflows",
    "format_table",
    "run_bench",
    "run_workflow_bench",
]


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


async def run_bench(args: argparse.Namespace) -> int:
    """Run the bench for each subworker count and print the table (or JSON)."""
    if args.defaults or args.compare:
        return await run_defaults(args)
    if args.n is None:
        args.n = 20_000
    if getattr(args, "dispatch", False):
        from ._bench_dispatch import dispatch_bench  # the control plane, only when asked

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
    return await run_table(args, counts)
