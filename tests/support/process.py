"""Processes a test started, found and ended by PID through Linux ``/proc``.

Nothing is ever killed by name: a PID is signalled only while its command line still
names something of ours (a marker such as the test's URL), so a PID the system reused
is never hit.
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (every thread's), in /proc order; [] once it is gone."""
    found: list[int] = []
    with suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    return found


def alive(pid: int) -> bool:
    """True while a process with that PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces ("" once gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and its descendants, by PID: stopped first, so none spawns another."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    for child in children(pid):
        kill_tree(child)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_if_ours(pid: int, marker: str) -> None:
    """SIGKILL ``pid`` (and its descendants) if it is still alive and still one of ours:
    its command line names ``marker``."""
    if marker in cmdline(pid):
        kill_tree(pid)
