"""Helpers for the tests of examples/: real subprocesses, free ports, a tiny HTTP client.

Every process is started by these helpers and ended by them, by PID (with the
children it had, for the run-actor-system parent whose subworkers run in a session of
their own). Nothing waits on a fixed sleep: readiness is polled, and the callers
bound every wait with ``trio.fail_after``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import trio
from support import free_tcp_port as free_port  # noqa: F401 (the old name, re-exported)
from support.process import alive as alive  # re-exported
from support.process import children as children_of  # the old name, re-exported

from fastworker._bench_common import wait_port as wait_for_port  # noqa: F401 (re-exported)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PYTHON = sys.executable
FASTWORKER = [PYTHON, "-m", "fastworker"]
"""The CLI, as ``python -m fastworker`` with this interpreter."""


def clean_env() -> dict[str, str]:
    """This environment without FASTWORKER_* settings (they would change CLI defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def run(args: Sequence[str], *, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; stdout and stderr captured as text.

    The caller owns the timeout: ``with trio.fail_after(60): await run(...)``.
    """
    done = await trio.run_process(
        list(args),
        cwd=cwd,
        env=clean_env(),
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


class Background:
    """A running process whose output (stdout and stderr) is collected as it comes."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.output = ""
        self._grew = trio.Event()
        self._eof = trio.Event()

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    async def collect(self) -> None:
        """Read output until EOF."""
        assert self.process.stdout is not None
        try:
            while chunk := await self.process.stdout.receive_some(65536):
                self.output += chunk.decode(errors="replace")
                self._grew.set()
                self._grew = trio.Event()
        finally:
            self._eof.set()

    async def wait_for_output(self, text: str) -> None:
        """Return once ``text`` was printed (the caller owns the timeout)."""
        while text not in self.output:
            if self.process.returncode is not None:
                raise AssertionError(f"exited before printing {text!r}; {self}")
            with trio.move_on_after(0.2):  # also notice an exit without more output
                await self._grew.wait()

    async def interrupt(self) -> int:
        """Send SIGINT, as Ctrl-C does; return the exit code once the process exited and
        all its output was read. The caller owns the timeout."""
        self.process.send_signal(signal.SIGINT)
        code = await self.process.wait()
        await self._eof.wait()
        return code

    def __str__(self) -> str:
        return f"pid {self.pid}, output:\n{self.output}"


@asynccontextmanager
async def background(args: Sequence[str], *, cwd: Path = REPO) -> AsyncIterator[Background]:
    """Start a process; when the block ends, make sure it and its children are gone.

    A process still running then gets SIGINT and 15 seconds to stop; after that it and
    the children it had are killed, each by its PID.
    """
    process = await trio.lowlevel.open_process(
        list(args), cwd=cwd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    proc = Background(process)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(proc.collect)
        try:
            yield proc
        finally:
            with trio.CancelScope(shield=True):
                await _stop(process)
                with trio.move_on_after(5):  # the rest of its output, for assertions after
                    await proc._eof.wait()
            nursery.cancel_scope.cancel()


async def _stop(process: trio.Process) -> None:
    if process.returncode is not None:
        return
    children = children_of(process.pid)
    process.send_signal(signal.SIGINT)
    with trio.move_on_after(15):
        await process.wait()
    for pid in children:
        if alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if process.returncode is None:
        process.kill()
        await process.wait()


async def http(
    port: int, method: str, path: str, payload: Any = None, *, raw: bytes | None = None
) -> tuple[int, Any]:
    """One HTTP/1.1 request to 127.0.0.1:``port``; returns (status, decoded JSON body).

    The caller owns the timeout.
    """
    body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(head.encode() + body)
        response = b""
        while chunk := await stream.receive_some(65536):
            response += chunk
    header, _, content = response.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, json.loads(content) if content else None
