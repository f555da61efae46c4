"""The ``fastworker`` command line run as a subprocess, to completion."""

from __future__ import annotations

import sys
from pathlib import Path

import trio


async def run_cli(
    *args: str, cwd: Path | str, limit: float = 60.0, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``python -m fastworker ARGS`` in ``cwd`` (where its task modules are) with no input.

    Returns the exit code, stdout and stderr. Raises trio.TooSlowError if it has not
    finished after ``limit`` seconds (the process is killed).
    """
    with trio.fail_after(limit):
        result = await trio.run_process(
            [sys.executable, "-m", "fastworker", *args],
            cwd=cwd,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            stdin=b"",
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()
