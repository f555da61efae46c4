"""The supervisor of subworker processes that ``run-actor-system`` starts.

Each subworker is an OS process in its own session. One that dies after it joined (a
task killed it) is always restarted; one that cannot start counts toward the restart
intensity of the actor runtime (``actors.RestartIntensity``), and a crash loop stops
the system with CrashLoop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

import trio

from actors import RestartIntensity

from ._exits import CrashLoop
from ._security import children_ca
from ._signals import Shutdown

log = logging.getLogger("fastworker.cli")


class ChildSupervisor:
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
            cmd += ["--tls-ca", children_ca(self.args)]
        return cmd

    async def supervise(
        self, index: int, url: str, crashed: list[BaseException], shutdown: Shutdown
    ) -> None:
        """Run subworker ``index``; restart it whenever it dies.

        A subworker that dies after it joined (killed by a task: a crash in a C
        extension, out of memory, ``os._exit``) is always restarted; the control plane
        redelivers its tasks and quarantines the culprit. Only a subworker that cannot
        start (import error, bad flags) counts toward the crash loop that stops the system.
        """
        failed_starts = RestartIntensity(self.max_restarts, self.window)
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
                if failed_starts.record(now):
                    crashed.append(
                        CrashLoop(
                            f"subworker {index} failed to start {failed_starts.recent} times in "
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
