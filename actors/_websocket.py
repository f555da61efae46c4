"""The websocket transport (trio-websocket): ``ws://host:port`` and ``wss://`` with TLS."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from ._errors import ConnectFailed, LinkClosed
from ._transport import Connection, Handler, Transport

if TYPE_CHECKING:
    from ._link import LinkConfig

log = logging.getLogger("actors.websocket")


class WebsocketConnection(Connection):
    """A Connection over one trio-websocket connection (binary frames)."""

    def __init__(self, ws: WebSocketConnection, disconnect_timeout: float) -> None:
        self._ws = ws
        self._disconnect_timeout = disconnect_timeout
        remote = ws.remote
        self.remote = str(remote) if isinstance(remote, str) else f"{remote.address}:{remote.port}"

    async def send(self, frame: bytes) -> None:
        """Send one binary message."""
        try:
            await self._ws.send_message(frame)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def receive(self) -> bytes | str:
        """Receive one message (bytes, or str for a text frame)."""
        try:
            return await self._ws.get_message()
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Close with a code and reason, waiting at most ``disconnect_timeout`` for the reply.

        ``wait=False`` gives the close frame a moment to go out, not the reply.
        """
        timeout = self._disconnect_timeout if wait else min(0.05, self._disconnect_timeout)
        with trio.CancelScope(shield=True), trio.move_on_after(timeout) as scope:
            try:
                await self._ws.aclose(code, reason[:120])
            except Exception as exc:  # closing a broken socket: nothing more to do
                log.debug("error while closing %s: %s", self.remote, exc)
        if scope.cancelled_caught:
            log.debug("close handshake with %s timed out", self.remote)


def _closed(exc: ConnectionClosed) -> LinkClosed:
    reason = exc.reason
    if reason is None:
        return LinkClosed(1006, "connection lost")
    return LinkClosed(reason.code, reason.reason or reason.name)


class WebsocketTransport(Transport):
    """Websocket listener and connector with the link's size limit and short disconnects."""

    def __init__(self, config: LinkConfig | None = None) -> None:
        from ._link import LinkConfig

        self.config = config or LinkConfig()

    async def listen(
        self,
        url: str,
        handler: Handler,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve websockets at ``ws://host:port`` (port 0 picks a free one)."""
        scheme, host, port = _split(url)
        if scheme == "wss" and ssl_context is None:
            raise ValueError("wss:// needs an ssl_context with the server certificate")
        config = self.config

        async def accept(request: WebSocketRequest) -> None:
            # An exception escaping a trio-websocket handler kills the whole server:
            # every handler is wrapped.
            try:
                ws = await request.accept()
                connection = WebsocketConnection(ws, config.disconnect_timeout)
                await handler(connection)
            except Exception:
                log.exception("websocket handler for %s failed", request.remote)

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                _serve,
                accept,
                host,
                port,
                ssl_context if scheme == "wss" else None,
                config,
            )
            real_port = server.port
            task_status.started(f"{scheme}://{host}:{real_port}")

    @asynccontextmanager
    async def connect(
        self, url: str, ssl_context: ssl.SSLContext | None
    ) -> AsyncIterator[WebsocketConnection]:
        """Open a websocket; ConnectFailed if nothing answers within connect_timeout."""
        config = self.config
        try:
            context = trio_websocket.open_websocket_url(
                url,
                ssl_context,
                max_message_size=config.max_frame_size,
                message_queue_size=64,
                connect_timeout=config.connect_timeout,
                disconnect_timeout=config.disconnect_timeout,
            )
            ws = await context.__aenter__()
        except (OSError, trio_websocket.HandshakeError) as exc:
            raise ConnectFailed(f"cannot connect to {url}: {exc}") from exc
        connection = WebsocketConnection(ws, config.disconnect_timeout)
        try:
            yield connection
        finally:
            # The close itself is shielded and bounded (even when cancelled). The context
            # must then be exited in the same cancel scope it was entered in: exiting it
            # inside a new (shielded) scope corrupts trio's cancel scope stack.
            await connection.close()
            try:
                await context.__aexit__(None, None, None)
            except Exception as exc:
                log.debug("closing websocket to %s: %s", url, exc)


async def _serve(
    accept: Handler,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    config: LinkConfig,
    *,
    task_status: trio.TaskStatus[trio_websocket.WebSocketServer],
) -> None:
    await trio_websocket.serve_websocket(
        accept,  # type: ignore[arg-type]
        host,
        port,
        ssl_context,
        max_message_size=config.max_frame_size,
        message_queue_size=64,
        connect_timeout=config.handshake_timeout,
        disconnect_timeout=config.disconnect_timeout,
        task_status=task_status,
    )


def _split(url: str) -> tuple[str, str, int]:
    scheme, _, rest = url.partition("://")
    rest = rest.split("/", 1)[0]
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        host, port_text = rest, "0"
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    return scheme.lower(), host, port
