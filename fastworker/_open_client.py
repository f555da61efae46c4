"""``fastworker.open_client``: the trio client under trio, the asyncio bridge under asyncio.

This module sits above both flavours and picks one by the library running the
``async with`` (sniffio), so neither flavour imports the other: ``_client`` (the trio
client) knows nothing of ``_asyncio`` (which runs that client in the process's trio
thread).
"""

from __future__ import annotations

import ssl
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import sniffio

import actors

from ._asyncio import open_asyncio_client
from ._client import Client, open_trio_client
from ._client_settings import ClientSettings, client_settings
from ._errors import ConfigurationError
from ._serialization import DEFAULT_MAX_PAYLOAD


def open_client(
    url: str | None = None,
    *,
    cluster: str = "default",
    secret: str | bytes | None = None,
    connect_timeout: float = 10.0,
    reconnect_timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    ssl_context: ssl.SSLContext | None = None,
    link: actors.LinkConfig | None = None,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
    settings: ClientSettings | None = None,
) -> AbstractAsyncContextManager[Client]:
    """Connect to a cluster for the duration of the ``async with`` block.

    Works under trio and under asyncio (FastAPI, aiohttp, ``asyncio.run``): the same
    Client methods, awaited in whichever loop is running. Under asyncio the client lives
    in one trio thread shared by the process; cancelling an awaited call cancels it there.

    ``url`` None discovers the control plane on this host's network (it asks, and
    listens for beacons). Every option after ``url`` is keyword-only; ``settings`` (a
    ClientSettings) gives them all, ``url`` included, as one value instead.

    Args:
        url: ``ws://HOST:PORT`` (``wss://`` with TLS); None discovers it.
        cluster: the cluster's name (discovery and the hello check it).
        secret: the cluster secret, if the cluster has one.
        connect_timeout: seconds to find and reach the control plane.
        reconnect_timeout: seconds a call waits for a lost link to come back.
        max_payload: the largest packed arguments (and results) in bytes.
        ssl_context: the TLS context for a ``wss://`` URL.
        link: link settings (frame size, heartbeats); default from ``max_payload``.
        discovery_port: the UDP port discovery uses.
        settings: every option above as one ClientSettings; then pass no other.

    Returns:
        An async context manager whose ``async with`` gives the Client.

    Raises:
        ConnectionFailed: none is reachable within ``connect_timeout`` seconds, or two
            control planes answer for the cluster (the message names both). Raised
            by ``async with``, as are the others except the first ConfigurationError.
        AuthenticationFailed: the secret is refused (or missing on one side).
        ConfigurationError: ``settings`` together with other options (raised by the
            call itself); a bad URL or secret, a TLS context for a ws:// URL, or an
            event loop other than trio or asyncio.
    """
    options = {k: v for k, v in locals().items() if k != "settings"}
    return _OpenClient(client_settings("open_client", settings, options))


class _OpenClient(AbstractAsyncContextManager[Client]):
    """Picks the trio client or the asyncio bridge by the library running the block."""

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._opened: AbstractAsyncContextManager[Client] | None = None

    async def __aenter__(self) -> Client:
        library = sniffio.current_async_library()
        opened: AbstractAsyncContextManager[Client]
        if library == "trio":
            opened = open_trio_client(settings=self._settings)
        elif library == "asyncio":
            opened = open_asyncio_client(self._settings)
        else:
            raise ConfigurationError(
                f"open_client runs under trio or asyncio, not {library}: "
                "from threads or sync code use fastworker.connect()"
            )
        client = await opened.__aenter__()
        self._opened = opened
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._opened is None:
            return None
        return await self._opened.__aexit__(exc_type, exc, tb)
