"""The websocket transport (trio-websocket): ``ws://host:port`` and ``wss://`` with TLS.

The listener counts every TCP connection from the moment it is accepted (HTTP upgrade,
hello and proof included) against ``LinkConfig.max_connections``; one over the cap is
answered with HTTP 503 and a reason, and a connection that does not finish its HTTP
upgrade within ``handshake_timeout`` is dropped. The connector does the TLS handshake
itself before the websocket upgrade, so a certificate that is not trusted is reported
at once, with OpenSSL's reason, instead of as a timeout.
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket
from trio_websocket import ConnectionClosed, ConnectionRejected, WebSocketConnection

from ._errors import ConnectFailed, HandshakeError, LinkClosed
from ._link_protocol import LinkConfig
from ._transport import Connection, Handler, Transport

log = logging.getLogger("actors.websocket")

CLOSE_TLS = 1015
"""The websocket code for a failed TLS handshake (reported locally, never sent)."""

_REFUSE_TIMEOUT = 1.0
"""How long a connection over the cap gets to send its HTTP request (for the 503)."""

RECEIVE_BUFFER = 256 * 1024
"""Bytes read from the socket at a time (trio-websocket's default, 4 KiB, makes a 16 MiB
frame 4,096 trips through its reader: a burst of large results crawled at ~15 MB/s)."""


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


class _Listening:
    """Open TCP connections of one listener (for the connection cap)."""

    def __init__(self) -> None:
        self.open = 0
        self.refused = 0


class WebsocketTransport(Transport):
    """Websocket listener and connector with the link's limits and short disconnects."""

    def __init__(self, config: LinkConfig | None = None) -> None:
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
        listeners: list[trio.SocketListener] | list[trio.SSLListener[trio.SocketStream]]
        if scheme == "wss":
            assert ssl_context is not None
            listeners = await trio.open_ssl_over_tcp_listeners(
                port, ssl_context, host=host, https_compatible=True
            )
        else:
            listeners = await trio.open_tcp_listeners(port, host=host)
        real_port = _port_of(listeners[0])
        state = _Listening()

        async def serve(stream: trio.abc.Stream) -> None:
            await self._serve_connection(stream, handler, state)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, serve, listeners)
            task_status.started(f"{scheme}://{host}:{real_port}")

    async def _serve_connection(
        self, stream: trio.abc.Stream, handler: Handler, state: _Listening
    ) -> None:
        """One accepted TCP connection, counted against the cap until it is closed.

        An exception escaping here would stop the whole listener: everything is caught.
        """
        config = self.config
        over = state.open >= config.max_connections
        state.open += 1
        try:
            if state.open > 2 * config.max_connections:
                # A flood: not even the HTTP request is read (no reason can be given).
                state.refused += 1
                return
            async with trio.open_nursery() as nursery:
                try:
                    await self._upgrade_and_handle(nursery, stream, handler, over, state)
                finally:
                    nursery.cancel_scope.cancel()
        except Exception as exc:
            if _is_disconnect(exc):
                log.debug("websocket connection dropped: %r", exc)
            else:
                log.exception("websocket handler failed")
        finally:
            state.open -= 1
            await trio.aclose_forcefully(stream)

    async def _upgrade_and_handle(
        self,
        nursery: trio.Nursery,
        stream: trio.abc.Stream,
        handler: Handler,
        over: bool,
        state: _Listening,
    ) -> None:
        config = self.config
        timeout = (
            min(config.handshake_timeout, _REFUSE_TIMEOUT) if over else config.handshake_timeout
        )
        ws: WebSocketConnection | None = None
        with trio.move_on_after(timeout):
            request = await trio_websocket.wrap_server_stream(
                nursery,
                stream,
                message_queue_size=64,
                max_message_size=config.max_frame_size,
                receive_buffer_size=RECEIVE_BUFFER,
            )
            if over:
                state.refused += 1
                # A flood must not flood the log too: the first refusal and every 100th.
                level = logging.WARNING if state.refused % 100 == 1 else logging.DEBUG
                log.log(
                    level,
                    "refused a connection from %s: at the limit of %d connections "
                    "(%d refused so far)",
                    request.remote,
                    config.max_connections,
                    state.refused,
                )
                text = (
                    f"this node is at its limit of {config.max_connections} connections "
                    "(max_connections): try again later"
                )
                await request.reject(503, body=text.encode())
                return
            ws = await request.accept()
        if ws is None:
            log.debug("dropped a connection that did not finish its upgrade within %ss", timeout)
            return
        connection = WebsocketConnection(ws, config.disconnect_timeout)
        try:
            await handler(connection)
        finally:
            await connection.close()

    @asynccontextmanager
    async def connect(
        self, url: str, ssl_context: ssl.SSLContext | None
    ) -> AsyncIterator[WebsocketConnection]:
        """Open a websocket; ConnectFailed if nothing answers within connect_timeout.

        A refused TLS handshake (e.g. a certificate this side does not trust) raises
        HandshakeError (code 1015) at once: trying again would not help. An HTTP
        rejection (a server at its connection limit) is a ConnectFailed with its reason.
        """
        config = self.config
        target = _Target.parse(url, ssl_context)
        connection: WebsocketConnection | None = None
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                ws = await _open_client(nursery, target, config)
                connection = WebsocketConnection(ws, config.disconnect_timeout)
                try:
                    yield connection
                except BaseException as exc:
                    body_error = exc
                    raise
                finally:
                    # Bounded and shielded; it closes the stream, which ends the reader.
                    await connection.close()
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The nursery only holds trio-websocket's reader: raise the error itself.
            raise _unwrap(group, body_error, url, opened=connection is not None) from None


class _Target:
    """Where a client connects: host, port, resource and the TLS context (None: ws://)."""

    def __init__(
        self, url: str, host: str, port: int, resource: str, tls: ssl.SSLContext | None
    ) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.resource = resource
        self.tls = tls

    @classmethod
    def parse(cls, url: str, ssl_context: ssl.SSLContext | None) -> _Target:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ws", "wss"):
            raise ValueError(f"not a websocket URL: {url!r}")
        if scheme == "ws" and ssl_context is not None:
            raise ValueError(
                f"an ssl_context was given for {url}, which is not encrypted: use wss://"
            )
        if parts.hostname is None:
            raise ValueError(f"no host in {url!r}")
        tls = None
        if scheme == "wss":
            tls = ssl_context if ssl_context is not None else ssl.create_default_context()
        port = parts.port or (443 if tls is not None else 80)
        resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(url, parts.hostname, port, resource, tls)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port in (80, 443) else f"{host}:{self.port}"


async def _open_client(
    nursery: trio.Nursery, target: _Target, config: LinkConfig
) -> WebSocketConnection:
    url = target.url
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(config.connect_timeout):
            tcp = await trio.open_tcp_stream(target.host, target.port)
            stream = tcp
            if target.tls is not None:
                tls_stream = trio.SSLStream(
                    tcp, target.tls, server_hostname=target.host, https_compatible=True
                )
                stream = tls_stream
                try:
                    await tls_stream.do_handshake()
                except trio.BrokenResourceError as exc:
                    raise HandshakeError(
                        f"TLS handshake with {target.host}:{target.port} failed: "
                        f"{_tls_reason(exc)}",
                        CLOSE_TLS,
                    ) from None
            return await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                target.host_header,
                target.resource,
                message_queue_size=64,
                max_message_size=config.max_frame_size,
                receive_buffer_size=RECEIVE_BUFFER,
            )
    except BaseException as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        if isinstance(exc, trio.TooSlowError):
            hint = " (a wss:// server reached with ws://?)" if target.tls is None else ""
            raise ConnectFailed(
                f"cannot connect to {url}: no websocket handshake within "
                f"{config.connect_timeout}s{hint}"
            ) from None
        if isinstance(exc, OSError | trio.BrokenResourceError):
            raise ConnectFailed(f"cannot connect to {url}: {exc}") from exc
        raise


def _port_of(listener: trio.abc.Listener[trio.abc.Stream]) -> int:
    while isinstance(listener, trio.SSLListener):
        listener = listener.transport_listener
    assert isinstance(listener, trio.SocketListener)
    return int(listener.socket.getsockname()[1])


def _tls_reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        message = str(cause.verify_message).rstrip(".")
        if "mismatch" in message:
            hint = "connect with a host name or address the certificate names"
        else:
            hint = "does this side trust the CA that signed it (the ssl_context's CA bundle)?"
        return f"the certificate was not accepted ({message}): {hint}"
    if isinstance(cause, ssl.SSLError):
        return f"{cause.reason or cause} (is the server speaking TLS, and this side?)"
    return str(cause or exc) or type(exc).__name__


def _unwrap(
    group: BaseExceptionGroup, body_error: BaseException | None, url: str, *, opened: bool
) -> BaseException:
    """The one error a connect() group stands for, preferring the caller's own."""
    leaves = list(_leaves(group))
    if body_error is not None and any(leaf is body_error for leaf in leaves):
        return body_error
    for leaf in leaves:
        if isinstance(leaf, trio.Cancelled):
            continue
        if isinstance(leaf, ConnectionRejected) and not opened:
            body = (leaf.body or b"").decode("utf-8", "replace").strip()
            return ConnectFailed(
                f"cannot connect to {url}: refused with HTTP {leaf.status_code}"
                + (f": {body}" if body else "")
            )
        if isinstance(leaf, ConnectionClosed | trio.BrokenResourceError) and not opened:
            return ConnectFailed(f"cannot connect to {url}: {leaf!r}")
        return leaf
    return leaves[0]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _is_disconnect(exc: BaseException) -> bool:
    """True for errors that only mean the peer went away (not worth a traceback)."""
    return all(
        isinstance(leaf, ConnectionClosed | trio.BrokenResourceError | trio.ClosedResourceError)
        for leaf in _leaves(exc)
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
