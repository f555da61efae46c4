"""The ``fastworker`` command line.

Exit codes: 0 ok, 1 task failed (or the system stopped on a crash loop), 2 usage error,
3 cannot reach the cluster. Errors print as one readable line; ``--debug`` shows the
traceback. Every flag can also be set as ``FASTWORKER_<FLAG>`` in the environment
(``--local-concurrency`` is ``FASTWORKER_LOCAL_CONCURRENCY``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import trio

from ._control_plane_node import DEFAULT_PORT
from ._errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    FastWorkerError,
    TaskError,
    TaskModuleError,
)

log = logging.getLogger("fastworker.cli")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


class UsageError(Exception):
    """A bad flag value or combination (exit code 2)."""


class CrashLoop(Exception):
    """A supervised subworker keeps crashing (exit code 1)."""


# -- argument parsing with environment defaults ------------------------------------------


class _EnvDefaults(argparse.ArgumentParser):
    """An ArgumentParser whose options default to FASTWORKER_<FLAG> environment variables."""

    def add_argument(self, *names: Any, **kwargs: Any) -> Any:
        long = next((n for n in names if isinstance(n, str) and n.startswith("--")), None)
        if long is not None and kwargs.get("action") not in ("help", "version"):
            env = "FASTWORKER_" + long[2:].replace("-", "_").upper()
            value = os.environ.get(env)
            if value is not None:
                action = kwargs.get("action")
                if action == "store_true":
                    kwargs["default"] = value.strip().lower() in ("1", "true", "yes", "on")
                else:
                    kwargs["default"] = value
                    kwargs["required"] = False
            help_text = kwargs.get("help")
            if help_text is not None and help_text != argparse.SUPPRESS:
                kwargs["help"] = f"{help_text} [env {env}]"
        return super().add_argument(*names, **kwargs)

    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the message and where the flags are listed.
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="default", help="cluster name")
    parser.add_argument("--secret-file", help="file holding the cluster secret")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--discovery-port", type=_positive_int, default=8799, help="UDP discovery port"
    )


def _client_flags(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--url", help="control plane URL (default: discover by beacon)")
    parser.add_argument(
        "--connect-timeout", type=_seconds, default=5.0, help="seconds to find the cluster"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    _tls_ca_flag(parser)


def _tls_ca_flag(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=help_text
        or "CA bundle (PEM) to trust for a wss:// control plane (default: the system's CAs)",
    )


def _tasks_flag(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--tasks",
        "--task-modules",
        dest="tasks",
        required=required
        and "FASTWORKER_TASKS" not in os.environ
        and "FASTWORKER_TASK_MODULES" not in os.environ,
        default=os.environ.get("FASTWORKER_TASK_MODULES"),
        help="task modules to import, comma-separated (e.g. myapp.tasks)",
    )


def _server_flags(parser: argparse.ArgumentParser, tasks_required: bool = True) -> None:
    _common(parser)
    _tasks_flag(parser, required=tasks_required)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_positive_int, default=DEFAULT_PORT, help="port")
    parser.add_argument(
        "--local-concurrency",
        type=_positive_int,
        default=None,
        help="tasks the control plane runs itself while no subworker is connected (0: never; "
        "default: 0 for run-actor-system with subworkers, so a task that crashes its process "
        "never takes the control plane down; else 4)",
    )
    parser.add_argument(
        "--max-worker-losses",
        type=_positive_int,
        default=2,
        help="a task in flight on this many lost workers (the last time alone) fails with "
        "WorkerLost instead of being redelivered",
    )
    parser.add_argument("--max-queue", type=_positive_int, default=100_000, help="queue limit")
    parser.add_argument(
        "--result-cache-size", type=_positive_int, default=10_000, help="results kept"
    )
    parser.add_argument("--result-ttl", type=_seconds, default=3600.0, help="result lifetime")
    parser.add_argument(
        "--result-cache-bytes",
        type=_positive_int,
        default=256 * 1024 * 1024,
        help="byte budget of the result cache",
    )
    parser.add_argument(
        "--max-payload",
        type=_positive_int,
        default=1024 * 1024,
        help="largest packed arguments or result, in bytes",
    )
    parser.add_argument(
        "--aging",
        type=_seconds,
        default=60.0,
        help="seconds of waiting that promote a queued task one priority level (0: never)",
    )
    parser.add_argument(
        "--cancel-timeout",
        type=_seconds,
        default=5.0,
        help="how long a cancel waits for a running task to confirm",
    )
    parser.add_argument("--journal", help="journal file (durable queue)")
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        help="seconds running tasks get to finish on Ctrl-C / SIGTERM",
    )
    parser.add_argument("--no-discovery", action="store_true", help="do not send beacons")
    parser.add_argument(
        "--broadcast-address",
        default="127.255.255.255",
        help="where beacons go: 127.255.255.255 (one host) or the subnet's broadcast address",
    )
    parser.add_argument(
        "--insecure-allow-unauthenticated",
        action="store_true",
        help="listen on a non-loopback address without a cluster secret (dangerous)",
    )
    parser.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="certificate chain (PEM) to serve wss:// with (TLS); the key may be in it too",
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert, if a separate file"
    )
    _dashboard_flags(parser)


def _dashboard_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        help="serve the dashboard, HTTP API and /metrics here (must be free; default "
        "127.0.0.1:8766, skipped with a warning when taken)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="serve no dashboard")
    parser.add_argument(
        "--dashboard-token-file",
        metavar="FILE",
        help="file holding the token every HTTP request must carry as 'Authorization: "
        "Bearer <token>' (required for a non-loopback --dashboard)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``fastworker`` argument parser."""
    parser = _EnvDefaults(
        prog="fastworker",
        description="FastWorker: a brokerless task queue for Python, built on trio.",
    )
    parser.add_argument("--version", action="version", version="fastworker 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_EnvDefaults)
    sub.required = True

    p = sub.add_parser(
        "run-actor-system",
        help="control plane plus N supervised subworker processes: a whole system",
    )
    _server_flags(p)
    p.add_argument("--subworkers", type=_positive_int, default=2, help="subworker processes")
    p.add_argument("--concurrency", type=_positive_int, default=8, help="slots per subworker")
    p.add_argument(
        "--prefetch",
        type=_positive_int,
        default=None,
        help="short tasks kept ready beyond the slots, run in priority order "
        "(default: as many as --concurrency; 0: work only for free slots)",
    )
    _tls_ca_flag(
        p, "CA bundle (PEM) the subworker processes trust for wss:// (default: --tls-cert itself)"
    )
    p.set_defaults(func=cmd_run_actor_system)

    p = sub.add_parser(
        "control-plane",
        help="run only the control plane (--tasks optional: it routes what workers announce)",
    )
    _server_flags(p, tasks_required=False)
    p.set_defaults(func=cmd_control_plane)

    p = sub.add_parser("subworker", help="run a subworker that joins a control plane")
    _common(p)
    _tasks_flag(p, required=True)
    p.add_argument(
        "--queues",
        help="serve only tasks of these queues, comma-separated (default: every queue)",
    )
    p.add_argument("--join", help="control plane URL (default: discover by beacon)")
    p.add_argument("--concurrency", type=_positive_int, default=8, help="slots")
    p.add_argument(
        "--prefetch",
        type=_positive_int,
        default=None,
        help="short tasks kept ready beyond the slots, run in priority order "
        "(default: as many as --concurrency; 0: work only for free slots)",
    )
    p.add_argument("--connect-timeout", type=_seconds, default=30.0, help="seconds to join")
    p.add_argument("--shutdown-timeout", type=_seconds, default=30.0, help="drain bound")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    _tls_ca_flag(p)
    p.set_defaults(func=cmd_subworker)

    p = sub.add_parser("submit", help="submit a task; prints its id (or its value with --wait)")
    _client_flags(p)
    p.add_argument("task", help="task name")
    p.add_argument("args", nargs="*", help="arguments (JSON where they parse, else strings)")
    p.add_argument("--kwargs", help="keyword arguments as a JSON object")
    p.add_argument("--priority", help="critical, high, normal or low")
    p.add_argument("--countdown", type=_seconds, help="run after this many seconds")
    p.add_argument("--wait", action="store_true", help="wait and print the result value")
    p.set_defaults(func=cmd_submit)

    for name, func, text in (
        ("status", cmd_status, "print a task's status"),
        ("result", cmd_result, "wait for a task and print its result"),
        ("cancel", cmd_cancel, "cancel a task"),
    ):
        p = sub.add_parser(name, help=text)
        _client_flags(p)
        p.add_argument("task_id", help="task id")
        if name == "result":
            p.add_argument("--no-wait", action="store_true", help="do not wait if unfinished")
        p.set_defaults(func=func)

    p = sub.add_parser("tasks", help="list the tasks a module registers, with schedules")
    _tasks_flag(p, required=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--log-level", default="warning", help="log level")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("top", help="live view of workers, queues and rates")
    _client_flags(p)
    p.add_argument("--interval", type=_seconds, default=1.0, help="refresh seconds")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("bench", help="benchmark a whole system on this machine")
    from .bench import add_bench_arguments

    add_bench_arguments(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--log-level", default="warning", help="log level")
    p.set_defaults(func=cmd_bench)
    return parser


# -- helpers ------------------------------------------------------------------------------


def read_secret(path: str | None) -> bytes | None:
    """The cluster secret from a file (UsageError if it cannot be read or is empty)."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if not data:
        raise UsageError(f"the secret file {path} is empty")
    return data


def client_tls(path: str | None) -> ssl.SSLContext | None:
    """The TLS context of a client or subworker: trust the CA bundle in ``path``.

    Every certificate in the bundle is a trust anchor (as from Python 3.13 on), so a
    server's own certificate file can be given as well as its CA.
    """
    if not path:
        return None
    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the CA bundle --tls-ca {path}: {_ssl_text(exc)}") from None
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of a server from --tls-cert and --tls-key (None without them)."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if not cert:
        if key:
            raise UsageError("--tls-key needs --tls-cert (the certificate it belongs to)")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        files = f"--tls-cert {cert}" + (f" --tls-key {key}" if key else "")
        raise UsageError(f"cannot load the TLS certificate ({files}): {_ssl_text(exc)}") from None
    return context


def _ssl_text(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return str(exc.strerror or exc)


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
        else {"type": result.error.type, "message": result.error.message},
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


# -- client commands ----------------------------------------------------------------------


async def cmd_submit(args: argparse.Namespace) -> int:
    """fastworker submit TASK [ARGS...]"""
    from ._client import open_client

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
        from ._model import Priority

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
    from ._client import raise_for

    if args.json:
        _print_json(_result_dict(result))
    try:
        raise_for(result)
    except TaskError as exc:
        if not args.json:
            print(f"fastworker: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.json:
        _print_value(result.value)
    return EXIT_OK


async def cmd_status(args: argparse.Namespace) -> int:
    """fastworker status ID"""
    from ._client import open_client

    async with open_client(args.url, **_client_options(args)) as client:
        status = await client.status(args.task_id)
    if args.json:
        _print_json({"task_id": args.task_id, "status": status.value if status else None})
    else:
        print(status.value if status else "unknown")
    return EXIT_OK if status is not None else EXIT_FAILED


async def cmd_result(args: argparse.Namespace) -> int:
    """fastworker result ID"""
    from ._client import open_client

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
    from ._client import open_client

    async with open_client(args.url, **_client_options(args)) as client:
        cancelled = await client.cancel(args.task_id)
    if args.json:
        _print_json({"task_id": args.task_id, "cancelled": cancelled})
    else:
        print("cancelled" if cancelled else "not cancelled (unknown or already finished)")
    return EXIT_OK if cancelled else EXIT_FAILED


def cmd_tasks(args: argparse.Namespace) -> int:
    """fastworker tasks --tasks MOD"""
    from ._registry import default_registry, import_task_modules

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
    from ._client import open_client
    from ._top import render_stats

    async with open_client(args.url, **_client_options(args)) as client:
        if args.once or args.json:
            stats = await client.stats()
            if args.json:
                from cattrs import unstructure

                _print_json(unstructure(stats))
            else:
                from rich.console import Console

                Console().print(render_stats(stats, None, 0.0, client.url))
            return EXIT_OK
        from rich.live import Live

        previous = None
        last = trio.current_time()
        stats = await client.stats()
        with Live(render_stats(stats, None, 0.0, client.url), auto_refresh=False) as live:
            while True:
                await trio.sleep(args.interval)
                previous, stats = stats, await client.stats()
                now = trio.current_time()
                live.update(render_stats(stats, previous, now - last, client.url), refresh=True)
                last = now


async def cmd_bench(args: argparse.Namespace) -> int:
    """fastworker bench"""
    from .bench import run_bench

    return await run_bench(args)


# -- servers ------------------------------------------------------------------------------


def _server_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "tasks": args.tasks,
        "host": args.host,
        "port": args.port,
        "cluster": args.cluster,
        "secret": read_secret(args.secret_file),
        "result_cache_size": args.result_cache_size,
        "result_ttl": args.result_ttl,
        "result_cache_bytes": args.result_cache_bytes,
        "max_payload": args.max_payload,
        "aging": args.aging or None,
        "cancel_timeout": args.cancel_timeout,
        "max_queue": args.max_queue,
        "local_concurrency": _local_concurrency(args),
        "max_worker_losses": args.max_worker_losses,
        "journal": args.journal,
        "discovery": not args.no_discovery,
        "discovery_port": args.discovery_port,
        "broadcast_address": args.broadcast_address,
        "allow_unauthenticated_remote": args.insecure_allow_unauthenticated,
        "ssl_context": server_tls(args),
        **_dashboard_options(args),
    }


def _dashboard_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.no_dashboard:
        if args.dashboard:
            raise UsageError("give --dashboard or --no-dashboard, not both")
        return {"dashboard": None}
    token = None
    path = args.dashboard_token_file
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                token = handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise UsageError(f"cannot read the dashboard token file {path}: {why}") from None
        if not token:
            raise UsageError(f"the dashboard token file {path} is empty")
    return {"dashboard": args.dashboard or True, "dashboard_token": token}


def _local_concurrency(args: argparse.Namespace) -> int:
    """--local-concurrency, defaulting to 0 when the system has subworker processes."""
    if args.local_concurrency is not None:
        return int(args.local_concurrency)
    return 0 if getattr(args, "subworkers", 0) else 4


class _Shutdown:
    """Signal handling: the first SIGINT/SIGTERM drains, the second stops at once."""

    def __init__(self) -> None:
        self.requested = trio.Event()
        self.forced = False

    async def watch(self, stop_now: Callable[[], None], *, task_status: Any) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for sig in signals:
                if not self.requested.is_set():
                    log.warning(
                        "%s: draining (running tasks get to finish); send it again to stop now",
                        signal.Signals(sig).name,
                    )
                    self.requested.set()
                else:
                    log.warning("second signal: stopping now")
                    self.forced = True
                    stop_now()


async def _serve(args: argparse.Namespace, subworkers: int, concurrency: int) -> int:
    shutdown = _Shutdown()
    supervisor = _ChildSupervisor(args, concurrency) if subworkers else None
    crashed: list[BaseException] = []
    try:
        await _serve_until_stopped(args, subworkers, concurrency, shutdown, supervisor, crashed)
    finally:
        if supervisor is not None:
            # A second signal (or an error) cancels the graceful stop_all: the children
            # live in their own sessions and would outlive us, reconnecting forever.
            await supervisor.kill_all()
    if crashed:
        raise crashed[0]
    return EXIT_OK if not shutdown.forced else 130


async def _serve_until_stopped(
    args: argparse.Namespace,
    subworkers: int,
    concurrency: int,
    shutdown: _Shutdown,
    supervisor: _ChildSupervisor | None,
    crashed: list[BaseException],
) -> None:
    from ._control_plane_node import open_control_plane
    from ._registry import default_registry

    async with trio.open_nursery() as nursery:
        await nursery.start(shutdown.watch, nursery.cancel_scope.cancel)
        async with open_control_plane(**_server_options(args)) as node:
            names = ", ".join(default_registry.names()) or (
                "none of its own: it runs what subworkers announce"
            )
            secret_flag = f" --secret-file {args.secret_file}" if args.secret_file else ""
            if args.cluster != "default":
                secret_flag += f" --cluster {args.cluster}"
            if args.tls_cert:
                secret_flag += f" --tls-ca {_children_ca(args)}"
            example = default_registry.names()[0] if len(default_registry) else "TASK"
            workers = (
                [f"{subworkers} subworker process(es) x {concurrency} slots"] if subworkers else []
            )
            local = _local_concurrency(args)
            if local:
                workers.append(f"{local} local slots while no subworker is joined")
            url = node.url
            where = ""
            if args.host in ("0.0.0.0", "::"):
                url = node.url.replace(args.host, "<this host's address>", 1)
                where = " (all interfaces)"
            print(
                f"FastWorker control plane at {node.url}{where} (cluster {args.cluster!r})\n"
                f"  tasks: {names}\n"
                f"  workers: {'; '.join(workers) or 'none yet: start a subworker'}\n"
                f"  submit one: fastworker submit {example} ... --wait --url {url}"
                + secret_flag
                + (f"\n  dashboard: {node.dashboard_url}/" if node.dashboard_url else "")
                + "\n  stop: Ctrl-C (drains running tasks first)",
                flush=True,
            )
            async with trio.open_nursery() as inner:
                if supervisor is not None:
                    for index in range(subworkers):
                        inner.start_soon(supervisor.supervise, index, node.url, crashed, shutdown)
                await shutdown.requested.wait()
                with trio.move_on_after(args.shutdown_timeout) as drain_scope:
                    await node.drain()
                reason = "shutdown"
                if drain_scope.cancelled_caught:
                    reason = (
                        f"the drain took longer than --shutdown-timeout {args.shutdown_timeout:g}s"
                    )
                    log.warning("%s; stopping anyway", reason)
                # Whatever did not finish ends now, with a reason its waiting clients hear.
                with trio.move_on_after(5.0):
                    await node.abandon(reason)
                if supervisor is not None:
                    await supervisor.stop_all()
                inner.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


class _ChildSupervisor:
    """Starts subworker processes and restarts them with backoff; a crash loop stops all."""

    max_restarts = 5
    window = 60.0

    def __init__(self, args: argparse.Namespace, concurrency: int) -> None:
        self.args = args
        self.concurrency = concurrency
        self.processes: dict[int, trio.Process] = {}
        self.stopping = False

    def command(self, url: str) -> list[str]:
        """The command line of one subworker process."""
        cmd = [
            sys.executable,
            "-m",
            "fastworker",
            "subworker",
            "--join",
            url,
            "--tasks",
            self.args.tasks,
            "--concurrency",
            str(self.concurrency),
            "--cluster",
            self.args.cluster,
            "--log-level",
            self.args.log_level,
            "--shutdown-timeout",
            str(self.args.shutdown_timeout),
            "--parent-pid",
            str(os.getpid()),
        ]
        if getattr(self.args, "prefetch", None) is not None:
            cmd += ["--prefetch", str(self.args.prefetch)]
        if self.args.secret_file:
            cmd += ["--secret-file", self.args.secret_file]
        if self.args.tls_cert:  # the control plane serves wss://: trust its certificate
            cmd += ["--tls-ca", _children_ca(self.args)]
        return cmd

    async def supervise(
        self, index: int, url: str, crashed: list[BaseException], shutdown: _Shutdown
    ) -> None:
        """Run subworker ``index``; restart it whenever it dies.

        A subworker that dies after it joined (killed by a task: a crash in a C
        extension, out of memory, ``os._exit``) is always restarted; the control plane
        redelivers its tasks and quarantines the culprit. Only a subworker that cannot
        start (import error, bad flags) counts toward the crash loop that stops the system.
        """
        failed_starts: deque[float] = deque()
        backoff = 0.5
        while not self.stopping:
            started = trio.current_time()
            read_fd, write_fd = os.pipe()
            try:
                process = await trio.lowlevel.open_process(
                    [*self.command(url), "--ready-fd", str(write_fd)],
                    start_new_session=True,
                    pass_fds=(write_fd,),
                )
            finally:
                os.close(write_fd)
            self.processes[index] = process
            log.info("subworker %d started (pid %d)", index, process.pid)
            try:
                code = await process.wait()
                joined = _was_signalled(read_fd)
            finally:
                os.close(read_fd)
            if self.stopping:
                return
            now = trio.current_time()
            if now - started > self.window:
                backoff = 0.5
            how = _describe_exit(code)
            if joined:
                log.warning(
                    "subworker %d (pid %d) %s while running tasks; restarting in %.1fs "
                    "(its tasks are redelivered; one that keeps killing workers fails with "
                    "WorkerLost)",
                    index,
                    process.pid,
                    how,
                    backoff,
                )
            else:
                failed_starts.append(now)
                while failed_starts and failed_starts[0] < now - self.window:
                    failed_starts.popleft()
                if len(failed_starts) > self.max_restarts:
                    crashed.append(
                        CrashLoop(
                            f"subworker {index} failed to start {len(failed_starts)} times in "
                            f"{self.window:g}s (last: {how}); stopping the system. Run "
                            f"'fastworker subworker --tasks {self.args.tasks}' to see why"
                        )
                    )
                    shutdown.requested.set()
                    return
                log.warning(
                    "subworker %d %s before it joined; restarting in %.1fs", index, how, backoff
                )
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def kill_all(self) -> None:
        """SIGKILL every child still running and reap it (after a forced stop or an error)."""
        self.stopping = True
        with trio.CancelScope(shield=True), trio.move_on_after(5.0):
            for process in self.processes.values():
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    async def stop_all(self) -> None:
        """SIGTERM every child, wait a little, then SIGKILL what is left."""
        self.stopping = True
        for process in self.processes.values():
            if process.returncode is None:
                process.terminate()
        with trio.move_on_after(max(5.0, self.args.shutdown_timeout)):
            for process in self.processes.values():
                await process.wait()
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
                await process.wait()


def _was_signalled(read_fd: int) -> bool:
    """True if the child wrote to its ready pipe (it joined the control plane)."""
    os.set_blocking(read_fd, False)
    try:
        return bool(os.read(read_fd, 16))
    except BlockingIOError:
        return False


def _describe_exit(code: int) -> str:
    """'exited with code 1' or 'was killed by SIGKILL'."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _children_ca(args: argparse.Namespace) -> str:
    """The CA bundle subworker children trust: --tls-ca, else the server's own certificate."""
    ca: str = getattr(args, "tls_ca", None) or args.tls_cert
    return os.path.abspath(ca)


async def cmd_run_actor_system(args: argparse.Namespace) -> int:
    """fastworker run-actor-system"""
    return await _serve(args, args.subworkers, args.concurrency)


async def cmd_control_plane(args: argparse.Namespace) -> int:
    """fastworker control-plane"""
    return await _serve(args, 0, 0)


async def cmd_subworker(args: argparse.Namespace) -> int:
    """fastworker subworker"""
    from functools import partial

    from ._subworker_node import run_subworker

    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    ssl_context = client_tls(args.tls_ca)
    shutdown = _Shutdown()
    async with trio.open_nursery() as nursery:
        await nursery.start(shutdown.watch, nursery.cancel_scope.cancel)
        node = None
        with trio.move_on_after(args.connect_timeout):
            node = await nursery.start(
                partial(
                    run_subworker,
                    url=args.join,
                    tasks=args.tasks,
                    queues=args.queues,
                    concurrency=args.concurrency,
                    prefetch=args.prefetch,
                    cluster=args.cluster,
                    secret=read_secret(args.secret_file),
                    discovery_port=args.discovery_port,
                    ssl_context=ssl_context,
                )
            )
        if node is None:
            raise ConnectionFailed(
                f"no control plane found within {args.connect_timeout}s "
                + (f"at {args.join}" if args.join else f"for cluster {args.cluster!r}")
            )
        log.info(
            "subworker %s joined %s with %d slots", node.node_id[:8], node.url, args.concurrency
        )
        if args.ready_fd is not None:
            # Tell the supervisor we joined: a later death is a crash at run time (a task's
            # doing), not a subworker that cannot start.
            try:
                os.write(args.ready_fd, b"1")
                os.close(args.ready_fd)
            except OSError as exc:
                log.debug("could not signal readiness: %s", exc)
        if args.parent_pid is not None:
            nursery.start_soon(_exit_with_parent, args.parent_pid, shutdown)
        await shutdown.requested.wait()
        with trio.move_on_after(args.shutdown_timeout):
            await node.drain()
        nursery.cancel_scope.cancel()
    return EXIT_OK if not shutdown.forced else 130


async def _exit_with_parent(parent_pid: int, shutdown: _Shutdown) -> None:
    """A supervised subworker drains and exits when its supervisor dies (even by SIGKILL)."""
    while os.getppid() == parent_pid:  # noqa: ASYNC110 (no event exists for a parent's death)
        await trio.sleep(1.0)
    log.warning("the supervising process %d is gone: draining and exiting", parent_pid)
    shutdown.requested.set()


# -- entry point --------------------------------------------------------------------------


def _exit_code(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(inner) == 1:
            return _exit_code(inner[0])
    if isinstance(exc, UsageError | ConfigurationError | TaskModuleError):
        text = str(exc).splitlines()[0] if isinstance(exc, TaskModuleError) else str(exc)
        return EXIT_USAGE, text
    if isinstance(exc, AuthenticationFailed | ConnectionFailed):
        return EXIT_UNREACHABLE, str(exc)
    if isinstance(exc, TaskError):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, CrashLoop):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, FastWorkerError):
        return EXIT_FAILED, str(exc)
    if isinstance(exc, OSError):
        return EXIT_UNREACHABLE, f"{exc.strerror or exc}"
    return EXIT_FAILED, f"unexpected error: {type(exc).__name__}: {exc} (run with --debug)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    # Task modules named on the command line live in the current directory, as with
    # ``python -m``; the console script would not otherwise find them.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        parser.error(f"unknown --log-level {args.log_level!r}: use debug, info, warning, error")
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    func = args.func
    try:
        if not _is_async(func):
            code = func(args)
        else:
            code = trio.run(func, args)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # one readable line, never a bare traceback
        if isinstance(exc, SystemExit):
            raise
        code, text = _exit_code(exc)
        if args.debug:
            logging.getLogger("fastworker").exception("details")
        print(f"fastworker: {text}", file=sys.stderr)
        return code
    return int(code or 0)


def _is_async(func: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
