"""Transports: how frames move between two nodes. A link runs over any of them.

``Connection`` is the small interface a link needs (send a frame, receive a frame,
close with a code and reason). Two transports implement it: websockets
(``ws://``/``wss://``, see ``_websocket``) and an in-memory one (``memory://name``)
with no sockets, so a multi-node system runs in one ``trio.run`` under a fake clock.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from ._errors import ConnectionFailed, LinkClosed

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("actors.transport")

Handler = Callable[["Connection"], Awaitable[None]]


class Connection(abc.ABC):
    """One bidirectional frame stream between two nodes."""

    remote: str = "?"

    @abc.abstractmethod
    async def send(self, frame: bytes) -> None:
        """Send one frame; LinkClosed if the connection is closed."""

    @abc.abstractmethod
    async def receive(self) -> bytes | str:
        """Receive one frame; LinkClosed(code, reason) once the connection is closed."""

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Close with a code and a reason; bounded in time and never raises.

        ``wait=False`` sends the close without waiting for the peer's reply (shutdown).
        """


class Transport(abc.ABC):
    """Listens for and opens Connections for one URL scheme."""

    @abc.abstractmethod
    async def listen(
        self,
        url: str,
        handler: Handler,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``handler`` for every incoming connection; report the real URL when ready."""

    @abc.abstractmethod
    def connect(
        self, url: str, ssl_context: ssl.SSLContext | None
    ) -> Any:  # an async context manager yielding a Connection
        """Open a connection (async context manager); ConnectionFailed if nothing answers."""


# -- the in-memory transport ----------------------------------------------------------


class MemoryConnection(Connection):
    """One end of an in-memory connection pair.

    Fault injection for tests: ``freeze()`` silently drops frames in both directions
    while keeping the connection open (a frozen process or a pulled cable);
    ``sever()`` closes it abruptly with code 1006, as a crash would.
    """

    def __init__(self, remote: str, capacity: int = 64) -> None:
        self.remote = remote
        self._send: trio.MemorySendChannel[bytes | str] | None = None
        self._recv: trio.MemoryReceiveChannel[bytes | str] | None = None
        self.other: MemoryConnection | None = None
        self._closed: LinkClosed | None = None
        self._frozen = False
        self.frames_sent = 0

    @staticmethod
    def pair(
        client_name: str, server_name: str, capacity: int = 64
    ) -> tuple[MemoryConnection, MemoryConnection]:
        """Two connected ends (client side, server side)."""
        a_send, b_recv = trio.open_memory_channel[bytes | str](capacity)
        b_send, a_recv = trio.open_memory_channel[bytes | str](capacity)
        a = MemoryConnection(server_name)
        b = MemoryConnection(client_name)
        a._send, a._recv, a.other = a_send, a_recv, b
        b._send, b._recv, b.other = b_send, b_recv, a
        return a, b

    @property
    def frozen(self) -> bool:
        """True while frames are being dropped."""
        return self._frozen

    def freeze(self) -> None:
        """Drop every frame both ways from now on, without closing (like SIGSTOP)."""
        self._frozen = True
        if self.other is not None:
            self.other._frozen = True

    def thaw(self) -> None:
        """Deliver frames again."""
        self._frozen = False
        if self.other is not None:
            self.other._frozen = False

    def sever(self) -> None:
        """Close both ends at once with 1006, as if the peer process died."""
        self._mark_closed(LinkClosed(1006, "connection lost"))

    def _mark_closed(self, closed: LinkClosed) -> None:
        for end in (self, self.other):
            if end is not None and end._closed is None:
                end._closed = closed
                assert end._send is not None
                end._send.close()

    async def send(self, frame: bytes | str) -> None:
        """Deliver a frame to the other end (dropped while frozen)."""
        if self._closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._closed
        self.frames_sent += 1
        if self._frozen:
            await trio.lowlevel.checkpoint()
            return
        assert self._send is not None
        try:
            await self._send.send(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._closed or LinkClosed(1006, "connection lost") from None

    async def receive(self) -> bytes | str:
        """Take the next frame from the other end."""
        assert self._recv is not None
        while True:
            try:
                frame = await self._recv.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                raise self._closed or LinkClosed(1006, "connection lost") from None
            if not self._frozen:
                return frame

    async def close(self, code: int = 1000, reason: str = "", *, wait: bool = True) -> None:
        """Close both ends; the other end's receive raises LinkClosed(code, reason)."""
        self._mark_closed(LinkClosed(code, reason))
        await trio.lowlevel.checkpoint()


class MemoryNetwork:
    """A registry of in-memory listeners, shared by the systems of one trio run.

    ``connections(url)`` lists the server-side ends accepted at a URL, for fault
    injection in tests.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, tuple[trio.Nursery, Handler]] = {}
        self._accepted: dict[str, list[MemoryConnection]] = {}

    def connections(self, url: str) -> list[MemoryConnection]:
        """Server-side ends accepted at ``url`` that are still open."""
        return [c for c in self._accepted.get(url, []) if c._closed is None]

    async def listen(
        self, url: str, handler: Handler, *, task_status: trio.TaskStatus[str]
    ) -> None:
        """Register a listener at ``url`` until cancelled.

        Raises:
            OSError: another listener is registered at ``url``.
        """
        if url in self._listeners:
            raise OSError(f"address already in use: {url}")
        async with trio.open_nursery() as nursery:
            self._listeners[url] = (nursery, handler)
            try:
                task_status.started(url)
                await trio.sleep_forever()
            finally:
                del self._listeners[url]

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[MemoryConnection]:
        """Connect to a listener.

        Raises:
            ConnectionFailed: no listener is registered at ``url``.
        """
        await trio.lowlevel.checkpoint()
        entry = self._listeners.get(url)
        if entry is None:
            raise ConnectionFailed(f"nothing is listening at {url}")
        nursery, handler = entry
        client, server = MemoryConnection.pair("memory-client", url)
        self._accepted.setdefault(url, []).append(server)
        self._accepted[url] = [c for c in self._accepted[url] if c._closed is None]
        nursery.start_soon(_run_handler, handler, server)
        try:
            yield client
        finally:
            await client.close(1000, "closed")


async def _run_handler(handler: Handler, connection: Connection) -> None:
    try:
        await handler(connection)
    except Exception:
        log.exception("connection handler failed")
    finally:
        await connection.close(1011, "handler ended")


_default_network: trio.lowlevel.RunVar[MemoryNetwork] = trio.lowlevel.RunVar("memory_network")


def memory_network() -> MemoryNetwork:
    """The default in-memory network of the current trio run (made on first use)."""
    try:
        return _default_network.get()
    except LookupError:
        network = MemoryNetwork()
        _default_network.set(network)
        return network


class MemoryTransport(Transport):
    """``memory://name`` URLs on a MemoryNetwork (the run's default one unless given)."""

    def __init__(self, network: MemoryNetwork | None = None) -> None:
        self.network = network or memory_network()

    async def listen(
        self,
        url: str,
        handler: Handler,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen at ``url`` on the network."""
        await self.network.listen(url, handler, task_status=task_status)

    def connect(self, url: str, ssl_context: ssl.SSLContext | None) -> Any:
        """Connect to ``url`` on the network."""
        return self.network.connect(url)
