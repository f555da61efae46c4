"""Exit codes of the ``fastworker`` command and the error each one stands for.

0 ok, 1 task failed (or the system stopped on a crash loop), 2 usage error, 3 cannot
reach the cluster; 130 after a second Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import trio

from .._errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    FastWorkerError,
    TaskError,
    TaskModuleError,
)
from .._usage import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


class CrashLoop(Exception):
    """A supervised subworker keeps crashing (exit code 1)."""


def exit_code(exc: BaseException) -> tuple[int, str]:
    """The exit code for an error that ended a command, and the one line to print."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(inner) == 1:
            return exit_code(inner[0])
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
