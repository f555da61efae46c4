"""The ``fastworker`` argument parser: subcommands, flag groups, environment defaults.

Every option defaults to ``FASTWORKER_<FLAG>`` from the environment (``_EnvDefaults``);
each subcommand points at the function that runs it (``func``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NoReturn

from .._control_plane_node import DEFAULT_PORT
from .._settings import ControlPlaneSettings, SubworkerSettings
from .._version import VERSION
from ..bench import add_bench_arguments
from ._client_commands import (
    cmd_bench,
    cmd_cancel,
    cmd_result,
    cmd_status,
    cmd_submit,
    cmd_tasks,
    cmd_top,
)
from ._exits import EXIT_USAGE
from ._serve import cmd_control_plane, cmd_run_actor_system, cmd_subworker

_CP = ControlPlaneSettings()
"""The library's defaults, which the serving commands' flags default to (one source)."""
_TYPE_METAVARS = {"_seconds": "SECONDS", "_positive_int": "N", "_ws_url": "URL"}
_METAVARS = {
    "--port": "PORT",
    "--discovery-port": "PORT",
    "--secret-file": "FILE",
    "--cluster": "NAME",
    "--host": "HOST",
    "--journal": "PATH",
    "--log-level": "LEVEL",
    "--tasks": "MODULES",
    "--kwargs": "JSON",
    "--priority": "P",
    "--broadcast-address": "ADDR",
}


class _EnvDefaults(argparse.ArgumentParser):
    """An ArgumentParser whose options default to FASTWORKER_<FLAG> environment variables."""

    def add_argument(self, *names: Any, **kwargs: Any) -> Any:
        long = next((n for n in names if isinstance(n, str) and n.startswith("--")), None)
        if long is not None and "metavar" not in kwargs and kwargs.get("action") is None:
            kind = getattr(kwargs.get("type"), "__name__", "")
            metavar = _METAVARS.get(long) or _TYPE_METAVARS.get(kind)
            if metavar:
                kwargs["metavar"] = metavar
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
                default = kwargs.get("default")
                if default not in (None, False, True, "") and "default:" not in help_text:
                    help_text = f"{help_text} (default: {default})"
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


def _ws_url(text: str) -> str:
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme not in ("ws", "wss"):
        why = " (the control plane speaks websocket, not HTTP)" if scheme.startswith("http") else ""
        raise argparse.ArgumentTypeError(
            f"expected a ws://HOST:PORT or wss://HOST:PORT URL, got {text!r}{why}"
        )
    return text


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="default", help="cluster name")
    parser.add_argument("--secret-file", help="file holding the cluster secret")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (of errors, and of failed tasks)"
    )
    parser.add_argument(
        "--discovery-port",
        type=_positive_int,
        default=_CP.discovery_port,
        help="UDP port of discovery",
    )


def _client_flags(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument(
        "--url", type=_ws_url, help="control plane URL, ws://HOST:PORT (default: discover it)"
    )
    parser.add_argument(
        "--connect-timeout",
        type=_seconds,
        default=5.0,
        help="seconds to find and reach the cluster",
    )
    parser.add_argument(
        "--json", action="store_true", help="machine-readable output (errors with tracebacks)"
    )
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
    parser.add_argument(
        "--port", type=_positive_int, default=DEFAULT_PORT, help="TCP port to listen on (0: any)"
    )
    parser.add_argument(
        "--local-concurrency",
        type=_positive_int,
        default=None,
        help="tasks the control plane runs itself while no subworker is connected (0: never; "
        "default: 0 for run-actor-system with subworkers, so a task that crashes its process "
        f"never takes the control plane down; else {_CP.local_concurrency})",
    )
    parser.add_argument(
        "--max-worker-losses",
        type=_positive_int,
        default=_CP.max_worker_losses,
        help="a task in flight on this many lost workers (the last time alone) fails with "
        "WorkerLost instead of being redelivered",
    )
    parser.add_argument(
        "--max-queue",
        type=_positive_int,
        default=_CP.max_queue,
        help="unfinished tasks held (tasks)",
    )
    parser.add_argument(
        "--result-cache-size",
        type=_positive_int,
        default=_CP.result_cache_size,
        help="results kept (count)",
    )
    parser.add_argument(
        "--result-ttl",
        type=_seconds,
        default=_CP.result_ttl,
        help="how long a result is kept (seconds)",
    )
    parser.add_argument(
        "--result-cache-bytes",
        type=_positive_int,
        default=_CP.result_cache_bytes,
        help="budget of the result cache (bytes)",
    )
    parser.add_argument(
        "--max-payload",
        type=_positive_int,
        default=_CP.max_payload,
        help="largest packed arguments or result (bytes)",
    )
    parser.add_argument(
        "--aging",
        type=_seconds,
        default=_CP.aging,
        help="seconds of waiting that promote a queued task one priority level (0: never)",
    )
    parser.add_argument(
        "--cancel-timeout",
        type=_seconds,
        default=_CP.cancel_timeout,
        help="seconds a cancel waits for a running task to confirm",
    )
    parser.add_argument("--journal", help="journal file, SQLite (durable queue)")
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        help="seconds running tasks get to finish on Ctrl-C / SIGTERM",
    )
    parser.add_argument("--no-discovery", action="store_true", help="do not send beacons")
    parser.add_argument(
        "--broadcast-address",
        default=_CP.broadcast_address,
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
    parser.add_argument("--version", action="version", version=f"fastworker {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_EnvDefaults)
    sub.required = True

    p = sub.add_parser(
        "run-actor-system",
        help="control plane plus N supervised subworker processes: a whole system",
    )
    _server_flags(p)
    p.add_argument("--subworkers", type=_positive_int, default=2, help="subworker processes")
    p.add_argument(
        "--concurrency", type=_positive_int, default=8, help="slots (tasks at once) per subworker"
    )
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
    p.add_argument(
        "--join", type=_ws_url, help="control plane URL, ws://HOST:PORT (default: discover it)"
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=SubworkerSettings().concurrency,
        help="slots (tasks at once)",
    )
    p.add_argument(
        "--prefetch",
        type=_positive_int,
        default=None,
        help="short tasks kept ready beyond the slots, run in priority order "
        "(default: as many as --concurrency; 0: work only for free slots)",
    )
    p.add_argument("--connect-timeout", type=_seconds, default=30.0, help="seconds to join")
    p.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=30.0,
        help="seconds running tasks get to finish on Ctrl-C / SIGTERM",
    )
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
    p.add_argument("--countdown", type=_seconds, help="run after this many seconds (seconds)")
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
    p.add_argument("--interval", type=_seconds, default=1.0, help="seconds between refreshes")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("bench", help="benchmark a whole system on this machine")
    add_bench_arguments(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--log-level", default="warning", help="log level")
    p.set_defaults(func=cmd_bench)
    # Each subcommand's own --help starts with the line the command list shows.
    for action in sub._choices_actions:
        choice = sub.choices[action.dest]
        if choice.description is None:
            choice.description = action.help
    return parser
