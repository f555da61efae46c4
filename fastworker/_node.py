"""What the three kinds of node (control plane, subworker, client) set up the same way."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, TypeVar

import trio

import actors

from ._errors import ConfigurationError

T = TypeVar("T")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (what needs no secret or token)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_bytes(secret: str | bytes | None) -> bytes | None:
    """A cluster secret as bytes (str is UTF-8 encoded; surrounding whitespace dropped)."""
    if secret is None:
        return None
    data = secret.encode() if isinstance(secret, str) else bytes(secret)
    data = data.strip()
    if not data:
        raise ConfigurationError("the cluster secret is empty")
    return data


def node_config(
    *,
    cluster: str,
    role: str,
    secret: bytes | None,
    link: actors.LinkConfig | None,
    max_payload: int,
    **options: Any,
) -> actors.SystemConfig:
    """An actor-system config for a node; frames fit four payloads (16 MiB at least)."""
    return actors.SystemConfig(
        cluster=cluster,
        role=role,
        secret=secret,
        link=link or actors.LinkConfig(max_frame_size=max(16 * 1024 * 1024, 4 * max_payload)),
        **options,
    )


async def run_blocking(threads: bool, fn: Callable[..., T], *args: Any) -> T:
    """Blocking work (disk, a sync task batch) in a worker thread, or in the loop when
    ``threads`` is False: tests under the autojump clock, which leaps ahead while a
    thread works."""
    if threads:
        return await trio.to_thread.run_sync(fn, *args)
    await trio.lowlevel.checkpoint()
    return fn(*args)
