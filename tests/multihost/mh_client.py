"""A small client the multi-host tests run inside a fake host (``ip netns exec NS python ...``).

Prints one JSON object on stdout; ``time.time()`` stamps let the test measure detection
and recovery times across processes (one machine, one clock).

    mh_client.py --url URL --secret-file F --cluster C spread N SECONDS
        submit N ``whereami(SECONDS)`` tasks as one batch; print their results and the
        ids of the registered subworkers
    mh_client.py --url URL --secret-file F --cluster C hold CLAIM_PATH
        submit ``hold(CLAIM_PATH)``; print its result when it arrives
    mh_client.py --url URL --secret-file F --cluster C workers N [--idle]
        poll the control plane's stats until exactly N subworkers are registered (and,
        with --idle, nothing runs and every slot is free); print the stats then
    mh_client.py --url URL --secret-file F --cluster C result TASK_ID
        print the stored result of a task (no waiting)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import trio

import fastworker


def _result(result: fastworker.TaskResult) -> dict[str, Any]:
    return {
        "task_id": result.task_id,
        "status": result.status.value,
        "value": result.value,
        "error": None if result.error is None else f"{result.error.type}: {result.error.message}",
        "attempts": result.attempts,
        "worker": result.worker,
        "started_at": result.started_at,
        "received_at": time.time(),
    }


async def spread(client: fastworker.Client, count: int, seconds: float) -> dict[str, Any]:
    ids = await client.delay_batch([("whereami", (seconds,), {}) for _ in range(count)])
    results = [_result(await client.result(task_id)) for task_id in ids]
    stats = await client.stats()
    return {"results": results, "workers": [w.id for w in stats.workers]}


async def hold(client: fastworker.Client, claim_path: str) -> dict[str, Any]:
    task_id = await client.delay("hold", claim_path)
    return _result(await client.result(task_id))


async def workers(client: fastworker.Client, count: int, idle: bool) -> dict[str, Any]:
    while True:
        stats = await client.stats()
        quiet = stats.running == 0 and all(w.free == w.slots for w in stats.workers)
        if len(stats.workers) == count and (quiet or not idle):
            return {
                "at": time.time(),
                "workers": [w.id for w in stats.workers],
                "free": {w.id: w.free for w in stats.workers},
                "completed": stats.completed,
                "failed": stats.failed,
                "redelivered": stats.redelivered,
            }
        await trio.sleep(0.05)


async def stored(client: fastworker.Client, task_id: str) -> dict[str, Any]:
    result = await client.get_result(task_id)
    return {"result": None if result is None else _result(result)}


def main(argv: list[str]) -> int:
    """Parse the command line, then run the operation."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret-file", required=True)
    parser.add_argument("--cluster", default="default")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound on the whole run")
    sub = parser.add_subparsers(dest="op", required=True)
    p = sub.add_parser("spread")
    p.add_argument("count", type=int)
    p.add_argument("seconds", type=float)
    p = sub.add_parser("hold")
    p.add_argument("claim_path")
    p = sub.add_parser("workers")
    p.add_argument("count", type=int)
    p.add_argument("--idle", action="store_true")
    p = sub.add_parser("result")
    p.add_argument("task_id")
    args = parser.parse_args(argv)
    with open(args.secret_file, "rb") as handle:
        secret = handle.read().strip()
    out = trio.run(run, args, secret)
    print(json.dumps(out), flush=True)
    return 0


async def run(args: argparse.Namespace, secret: bytes) -> dict[str, Any]:
    """One operation, bounded by --timeout."""
    with trio.fail_after(args.timeout):
        # connect_timeout covers a control plane that is still starting: connecting
        # retries with backoff until it answers.
        async with fastworker.open_client(
            args.url, cluster=args.cluster, secret=secret, connect_timeout=args.timeout
        ) as client:
            if args.op == "spread":
                out = await spread(client, args.count, args.seconds)
            elif args.op == "hold":
                out = await hold(client, args.claim_path)
            elif args.op == "workers":
                out = await workers(client, args.count, args.idle)
            else:
                out = await stored(client, args.task_id)
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
