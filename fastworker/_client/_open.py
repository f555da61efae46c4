"""Opening a client: open_client (trio or asyncio) and open_trio_client."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import sniffio
import trio

import actors
from actors import Actor, Context

from .._discovery import discover_control_plane
from .._errors import AuthenticationFailed, ConfigurationError, ConnectionFailed
from .._messages import Events, Results, Unknown
from .._node import node_config, secret_bytes
from .._serialization import DEFAULT_MAX_PAYLOAD
from .._tls import check_tls
from ._calls import Client
from ._connection import INBOX, ROLE


class _Inbox(Actor):
    """The client's local actor: outcomes and events pushed by the control plane."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def receive(self, ctx: Context, message: Any) -> Any:
        kind = type(message)
        if kind is Results:
            self.client._deliver(message.outcomes)
        elif kind is Unknown:
            self.client._unknown(message.ids)
        elif kind is Events:
            self.client._publish(message.events)
        return None


@asynccontextmanager
async def open_trio_client(
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
) -> AsyncIterator[Client]:
    """open_client's trio side (see there); the asyncio and blocking clients run it in
    the process's trio thread.

    Raises:
        ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
        ConnectionFailed: no control plane found or reached within ``connect_timeout``
            (or two answer for the cluster), or the hello was refused.
        AuthenticationFailed: the control plane refused the secret.
    """
    secret_key = secret_bytes(secret)
    config = node_config(
        cluster=cluster, role=ROLE, secret=secret_key, link=link, max_payload=max_payload
    )
    started = trio.current_time()
    if url is None:
        url = await discover_control_plane(
            cluster, secret_key, discovery_port, timeout=connect_timeout
        )
    check_tls(url, ssl_context)
    remaining = max(0.0, connect_timeout - (trio.current_time() - started))
    async with actors.open_actor_system(config) as system:
        with trio.move_on_after(remaining) as scope:
            try:
                peer = await system.connect(url, ssl_context=ssl_context)
            except actors.AuthenticationError as exc:
                raise AuthenticationFailed(
                    f"the control plane at {url} refused us: {exc}"
                ) from None
            except actors.HandshakeError as exc:
                raise ConnectionFailed(f"cannot connect to {url}: {exc}") from None
            client = Client(
                system, peer, max_payload=max_payload, reconnect_timeout=reconnect_timeout
            )
            client._inbox_ref = await system.spawn(INBOX, lambda: _Inbox(client), capacity=100_000)
            await system.nursery.start(client._keep_registered)
        if scope.cancelled_caught:
            raise ConnectionFailed(
                f"cannot reach the control plane at {url} within {connect_timeout}s: "
                "is it running? (fastworker run-actor-system --tasks ...)"
            )
        try:
            yield client
        finally:
            client._close()


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
) -> AbstractAsyncContextManager[Client]:
    """Connect to a cluster for the duration of the ``async with`` block.

    Works under trio and under asyncio (FastAPI, aiohttp, ``asyncio.run``): the same
    Client methods, awaited in whichever loop is running. Under asyncio the client lives
    in one trio thread shared by the process; cancelling an awaited call cancels it there.

    ``url`` None discovers the control plane on this host's network (it asks, and
    listens for beacons).

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

    Returns:
        An async context manager whose ``async with`` gives the Client.

    Raises:
        ConnectionFailed: none is reachable within ``connect_timeout`` seconds, or two
            control planes answer for the cluster (the message names both). Raised
            by ``async with``, as are the others.
        AuthenticationFailed: the secret is refused (or missing on one side).
        ConfigurationError: a bad URL or secret, a TLS context for a ws:// URL, or an
            event loop other than trio or asyncio.
    """
    options: dict[str, Any] = {
        "cluster": cluster,
        "secret": secret,
        "connect_timeout": connect_timeout,
        "reconnect_timeout": reconnect_timeout,
        "max_payload": max_payload,
        "ssl_context": ssl_context,
        "link": link,
        "discovery_port": discovery_port,
    }
    return _OpenClient(url, options)


class _OpenClient(AbstractAsyncContextManager[Client]):
    """Picks the trio client or the asyncio bridge by the library running the block."""

    def __init__(self, url: str | None, options: dict[str, Any]) -> None:
        self._url = url
        self._options = options
        self._trio: AbstractAsyncContextManager[Client] | None = None
        self._bridge: Any = None

    async def __aenter__(self) -> Client:
        library = sniffio.current_async_library()
        if library == "trio":
            self._trio = open_trio_client(self._url, **self._options)
            return await self._trio.__aenter__()
        if library == "asyncio":
            from .._asyncio import open_asyncio_client

            self._bridge = open_asyncio_client(self._url, self._options)
            client: Client = await self._bridge.__aenter__()
            return client
        raise ConfigurationError(
            f"open_client runs under trio or asyncio, not {library}: "
            "from threads or sync code use fastworker.connect()"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._trio is not None:
            return await self._trio.__aexit__(exc_type, exc, tb)
        if self._bridge is not None:
            result: bool | None = await self._bridge.__aexit__(exc_type, exc, tb)
            return result
        return None
