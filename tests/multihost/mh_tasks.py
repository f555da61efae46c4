"""Tasks for the multi-host tests (imported by name: the CLI puts its cwd on sys.path).

Each fake host's processes get ``FWMH_HOST`` (the host's short name) in their
environment; ``/proc/self/ns/net`` names the network namespace a task really ran in.
"""

from __future__ import annotations

import os
from typing import Any

import trio

from fastworker import task

HOST_ENV = "FWMH_HOST"


def _where() -> dict[str, Any]:
    return {
        "host": os.environ.get(HOST_ENV, "?"),
        "netns": os.readlink("/proc/self/ns/net"),  # "net:[INODE]"
        "pid": os.getpid(),
    }


@task
async def whereami(seconds: float = 0.0) -> dict[str, Any]:
    """Sleep ``seconds`` (to keep a slot busy), then say which host and netns ran it."""
    await trio.sleep(seconds)
    return _where()


@task
async def hold(claim_path: str, seconds: float = 120.0) -> dict[str, Any]:
    """The first attempt claims ``claim_path`` (writing its host name into it), holds its
    slot until ``CLAIM.release`` exists or ``seconds`` pass, then writes ``CLAIM.done``.
    A later attempt (a redelivery) finds the claim and returns at once."""
    try:
        fd = os.open(claim_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return {**_where(), "held": False}
    try:
        os.write(fd, _where()["host"].encode())
    finally:
        os.close(fd)
    with trio.move_on_after(seconds):
        while not await trio.Path(claim_path + ".release").exists():  # noqa: ASYNC110
            await trio.sleep(0.05)
    await trio.Path(claim_path + ".done").write_text(_where()["host"])
    return {**_where(), "held": True}
