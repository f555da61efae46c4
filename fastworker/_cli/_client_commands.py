"""The client commands: submit, status, result, cancel, tasks, top (and bench).

Each opens a client (``open_client``), asks one thing and prints it, as text or with
``--json``; the exit code says how it went (``_exits``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from cattrs import unstructure

from .._client import raise_for
from .._errors import TaskError
from .._model import Priority
from .._open_client import open_client
from .._registry import default_registry, import_task_modules
from .._usage import UsageError
from ..bench import run_bench
from ._exits import EXIT_FAILED, EXIT_OK
from ._security import client_tls, read_secret


def parse_cli_value(text: str) -> Any:
    """A CLI argument as JSON where it parses (1, 2.5, true, [1,2], {"a":1}), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cluster": args.cluster,
        "secret": read_secret(args.secret_file),
        "connect_timeout": args.connect_timeout,
        "discovery_port": args.discovery_port,
        "ssl_context": client_tls(args.tls_ca),
    }


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=_json_default, sort_keys=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _result_dict(result: Any) -> dict[str, Any]:
    return {
        "task_id": result.task_id,
        "name": result.name,
        "status": result.status.value,
        "value": result.value,
        "error": None
        if result.error is None
        else {
            "type": result.error.type,
            "message": result.error.message,
            "traceback": result.error.traceback,
        },
        "attempts": result.attempts,
        "worker": result.worker,
        "started_at": result.started_at,
        "completed_at": result.completed_at,
    }


def _print_value(value: Any) -> None:
    if isinstance(value, str):
        print(value)
    else:
        print(json.dumps(value, default=_json_default))


async def cmd_submit(args: argparse.Namespace) -> int:
    """fastworker submit TASK [ARGS...]"""
    task_args = [parse_cli_value(a) for a in args.args]
    kwargs: dict[str, Any] = {}
    if args.kwargs:
        try:
            kwargs = json.loads(args.kwargs)
        except ValueError as exc:
            raise UsageError(f"--kwargs is not valid JSON: {exc}") from None
        if not isinstance(kwargs, dict):
            raise UsageError('--kwargs must be a JSON object, e.g. {"x": 1}')
    if args.priority is not None:
        try:  # a usage error even when the cluster is unreachable (checked before connecting)
            Priority.parse(args.priority)
        except ValueError as exc:
            raise UsageError(f"--priority: {exc}") from None
    async with open_client(args.url, **_client_options(args)) as client:
        task_id = await client.submit(
            args.task, task_args, kwargs, priority=args.priority, countdown=args.countdown
        )
        if not args.wait:
            if args.json:
                _print_json({"task_id": task_id})
            else:
                print(task_id)
            return EXIT_OK
        result = await client.result(task_id)
    return _report_result(result, args)


def _report_result(result: Any, args: argparse.Namespace) -> int:
    """Print a TaskResult (value, or JSON) and give the exit code: 0 success, 1 otherwise."""
    if args.json:
        _print_json(_result_dict(result))
    try:
        raise_for(result)
    except TaskError as exc:
        if not args.json:
            traceback = result.error.traceback if result.error is not None else None
            if getattr(args, "debug", False) and traceback:
                print(f"remote traceback of task {result.task_id}:", file=sys.stderr)
                print(str(traceback).rstrip(), file=sys.stderr)
            elif traceback:
                exc = TaskError(f"{exc} (--debug shows its traceback)")
            print(f"fastworker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.json:
        _print_value(result.value)
    return EXIT_OK


async def cmd_status(args: argparse.Namespace) -> int:
    """fastworker status ID"""
    async with open_client(args.url, **_client_options(args)) as client:
        status = await client.status(args.task_id)
    if args.json:
        _print_json({"task_id": args.task_id, "status": status.value if status else None})
    else:
        print(status.value if status else "unknown")
    return EXIT_OK if status is not None else EXIT_FAILED


async def cmd_result(args: argparse.Namespace) -> int:
    """fastworker result ID"""
    async with open_client(args.url, **_client_options(args)) as client:
        if args.no_wait:
            result = await client.get_result(args.task_id)
            if result is None:
                status = await client.status(args.task_id)
                text = status.value if status else "unknown"
                if args.json:
                    _print_json({"task_id": args.task_id, "status": text})
                else:
                    print(
                        f"fastworker: task {args.task_id} has no result yet ({text})",
                        file=sys.stderr,
                    )
                return EXIT_FAILED
        else:
            result = await client.result(args.task_id)
    return _report_result(result, args)


async def cmd_cancel(args: argparse.Namespace) -> int:
    """fastworker cancel ID"""
    async with open_client(args.url, **_client_options(args)) as client:
        cancelled = await client.cancel(args.task_id)
    if args.json:
        _print_json({"task_id": args.task_id, "cancelled": cancelled})
    else:
        print("cancelled" if cancelled else "not cancelled (unknown or already finished)")
    return EXIT_OK if cancelled else EXIT_FAILED


def cmd_tasks(args: argparse.Namespace) -> int:
    """fastworker tasks --tasks MOD"""
    import_task_modules(args.tasks)
    now = time.time()
    rows: list[dict[str, Any]] = []
    for spec in default_registry.specs():
        next_fire = None
        if spec.repeat_interval is not None:
            next_fire = now + spec.repeat_interval
        elif spec.cron is not None:
            next_fire = spec.cron.next_after_timestamp(now)
        rows.append(
            {
                "name": spec.name,
                "kind": "async" if spec.is_async else "sync",
                "priority": spec.priority.name.lower(),
                "retries": spec.retries,
                "timeout": spec.timeout,
                "redeliver": spec.redeliver,
                "queue": spec.queue,
                "max_concurrency": spec.max_concurrency,
                "rate_limit": spec.rate_limit,
                "schedule": spec.describe_schedule() or None,
                "next_fire": datetime.fromtimestamp(next_fire, UTC).isoformat()
                if next_fire
                else None,
            }
        )
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print(f"no tasks registered by {args.tasks}")
        return EXIT_OK
    # A local import: rich costs ~20 ms at start-up, paid only by the commands that draw.
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"tasks in {args.tasks}")
    columns = ("name", "kind", "priority", "retries", "timeout", "queue", "limits")
    for column in (*columns, "schedule", "next fire (UTC)"):
        table.add_column(column)
    for row in rows:
        limits = [f"{row['max_concurrency']} at once"] if row["max_concurrency"] else []
        limits += [row["rate_limit"]] if row["rate_limit"] else []
        table.add_row(
            row["name"],
            row["kind"],
            row["priority"],
            str(row["retries"]),
            f"{row['timeout']:g}s" if row["timeout"] else "-",
            row["queue"],
            ", ".join(limits) or "-",
            row["schedule"] or "-",
            (row["next_fire"] or "-").replace("+00:00", ""),
        )
    console = Console()
    if not console.is_terminal:
        # Piped or redirected: rich would squeeze the table into 80 columns and cut task
        # names and times short ("weekday_m…"); print it at its natural width instead.
        console = Console(width=max(console.width, 200))
    console.print(table)
    return EXIT_OK


async def cmd_top(args: argparse.Namespace) -> int:
    """fastworker top"""
    # A local import: rich (under _top) costs ~20 ms at start-up, paid only by `top`.
    from rich.console import Console

    from .._top import render_stats, run_live

    async with open_client(args.url, **_client_options(args)) as client:
        if args.once or args.json:
            stats = await client.stats()
            if args.json:
                _print_json(unstructure(stats))
            else:
                Console().print(render_stats(stats, None, 0.0, client.url))
            return EXIT_OK
        await run_live(client, args.interval)
    return EXIT_OK


async def cmd_bench(args: argparse.Namespace) -> int:
    """fastworker bench"""
    return await run_bench(args)
