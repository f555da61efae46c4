"""The ``fastworker`` command line.

Exit codes: 0 ok, 1 task failed (or the system stopped on a crash loop), 2 usage error,
3 cannot reach the cluster. Errors print as one readable line; ``--debug`` shows the
traceback. Every flag can also be set as ``FASTWORKER_<FLAG>`` in the environment
(``--local-concurrency`` is ``FASTWORKER_LOCAL_CONCURRENCY``).

The story, one file each: ``_parser`` (the flags and their environment defaults),
``_security`` (secrets and TLS), ``_client_commands`` (submit, status, result, cancel,
tasks, top, bench), ``_serve`` (run-actor-system, control-plane, subworker: signals and
drain), ``_supervisor`` (the subworker processes), ``_exits`` (exit codes) and ``_main``
(the entry point: ``fastworker = "fastworker._cli:run"``).
"""

from .._usage import UsageError
from ._client_commands import (
    cmd_bench,
    cmd_cancel,
    cmd_result,
    cmd_status,
    cmd_submit,
    cmd_tasks,
    cmd_top,
    parse_cli_value,
)
from ._exits import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, CrashLoop
from ._main import main, run
from ._parser import build_parser
from ._security import client_tls, read_secret, server_tls
from ._serve import cmd_control_plane, cmd_run_actor_system, cmd_subworker

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "CrashLoop",
    "UsageError",
    "build_parser",
    "client_tls",
    "cmd_bench",
    "cmd_cancel",
    "cmd_control_plane",
    "cmd_result",
    "cmd_run_actor_system",
    "cmd_status",
    "cmd_submit",
    "cmd_subworker",
    "cmd_tasks",
    "cmd_top",
    "main",
    "parse_cli_value",
    "read_secret",
    "run",
    "server_tls",
]
