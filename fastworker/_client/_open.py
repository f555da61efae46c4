"""Opening the trio client: open_trio_client (``fastworker.open_client`` under trio).

The flavour is picked above this package (``fastworker._open_client``): under asyncio
and from threads, the same trio client runs in the process's trio thread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import actors
from actors import Actor, Context

from .._client_settings import ClientSettings
from .._discovery import discover_control_plane
from .._errors import AuthenticationFailed, ConnectionFailed
from .._messages import Events, Results, Unknown
from .._node import node_config, secret_bytes
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
async def open_trio_client(settings: ClientSettings) -> AsyncIterator[Client]:
    """open_client's trio side, on one ClientSettings record (``fastworker.open_client``
    settles its options into one); the asyncio and blocking clients run it in the
    process's trio thread.

    Raises:
        ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
        ConnectionFailed: no control plane found or reached within ``connect_timeout``
            (or two answer for the cluster), or the hello was refused.
        AuthenticationFailed: the control plane refused the secret.
    """
    s = settings
    url, connect_timeout = s.url, s.connect_timeout
    secret_key = secret_bytes(s.secret)
    config = node_config(
        cluster=s.cluster, role=ROLE, secret=secret_key, link=s.link, max_payload=s.max_payload
    )
    started = trio.current_time()
    if url is None:
        url = await discover_control_plane(
            s.cluster, secret_key, s.discovery_port, timeout=connect_timeout
        )
    check_tls(url, s.ssl_context)
    remaining = max(0.0, connect_timeout - (trio.current_time() - started))
    async with actors.open_actor_system(config) as system:
        with trio.move_on_after(remaining) as scope:
            try:
                peer = await system.connect(url, ssl_context=s.ssl_context)
            except actors.AuthenticationError as exc:
                raise AuthenticationFailed(
                    f"the control plane at {url} refused us: {exc}"
                ) from None
            except actors.HandshakeError as exc:
                raise ConnectionFailed(f"cannot connect to {url}: {exc}") from None
            client = Client(
                system, peer, max_payload=s.max_payload, reconnect_timeout=s.reconnect_timeout
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
