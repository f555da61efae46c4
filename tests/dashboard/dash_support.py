"""Start ``fastworker run-actor-system`` with a dashboard for the tests, end it by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

HERE = Path(__file__).resolve().parent
_DASHBOARD = re.compile(r"dashboard: (http://\S+?)/?$", re.MULTILINE)

#: The fields every task read of the HTTP API has, whichever source answers it.
TASK_KEYS = {
    "id",
    "name",
    "status",
    "value",
    "error",
    "attempts",
    "worker",
    "started_at",
    "completed_at",
}


def base_env() -> dict[str, str]:
    """Our environment without FASTWORKER_* settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    with suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                found |= {int(c) for c in handle.read().split()}
    return found


@attrs.define
class System:
    """A running system: its process, the dashboard URL and the output so far."""

    process: trio.Process
    log: Any
    base: str = ""
    token: str | None = None
    seen: set[int] = attrs.field(factory=set)

    def output(self) -> str:
        """Everything the process printed."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        """An httpx client for the dashboard (with the token, if any)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30.0, **kwargs)

    async def wait_ready(self, subworkers: int) -> None:
        """Poll the printed dashboard URL, then /api/v1/stats until the subworkers joined."""
        while not self.base:
            if self.process.returncode is not None:
                pytest.fail(f"the system exited {self.process.returncode}:\n{self.output()}")
            found = _DASHBOARD.search(self.output())
            if found:
                self.base = found.group(1)
            else:
                await trio.sleep(0.05)
        async with self.http() as http:
            while True:
                stats = (await http.get("/api/v1/stats")).json()
                if sum(w["id"] != "local" for w in stats["workers"]) >= subworkers:
                    self.seen |= _children(self.process.pid)
                    return
                await trio.sleep(0.05)

    async def kill(self) -> None:
        """End the process and its subworkers, by PID."""
        self.seen |= _children(self.process.pid)
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
        for pid in self.seen:
            with suppress(OSError):
                if b"fastworker" in Path(f"/proc/{pid}/cmdline").read_bytes():  # noqa: ASYNC240
                    os.kill(pid, signal.SIGKILL)


@asynccontextmanager
async def run_system(
    *extra: str, subworkers: int = 1, token: str | None = None, wait: bool = True
) -> AsyncIterator[System]:
    """``run-actor-system --tasks dash_tasks --dashboard 127.0.0.1:0`` (unless given)."""
    cmd = [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--tasks",
        "dash_tasks",
        "--port",
        "0",
        "--subworkers",
        str(subworkers),
        "--no-discovery",
        "--log-level",
        "warning",
        *extra,
    ]
    if "--dashboard" not in extra:
        cmd += ["--dashboard", "127.0.0.1:0"]
    with tempfile.TemporaryFile() as log:
        process = await trio.lowlevel.open_process(
            cmd, cwd=HERE, env=base_env(), stdout=log, stderr=subprocess.STDOUT
        )
        system = System(process, log, token=token)
        try:
            if wait:
                with trio.fail_after(60):
                    await system.wait_ready(subworkers)
            yield system
        finally:
            with trio.CancelScope(shield=True):
                await system.kill()
