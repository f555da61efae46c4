"""``Client.events()``: a closable stream of the cluster's task and worker events."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType

import trio

from ._records import Event

Subscribe = Callable[[trio.MemorySendChannel[Event]], Awaitable[None]]
Unsubscribe = Callable[[trio.MemorySendChannel[Event]], None]


class EventStream(AsyncIterator[Event]):
    """One subscription to the cluster's events (from ``Client.events()``).

    Use it as an async context manager, so the subscription ends with the block::

        async with client.events() as stream:
            async for event in stream:
                ...

    ``async for event in client.events()`` works too (the subscription then ends when
    the stream is garbage-collected or the client closes), and so does
    ``contextlib.aclosing(client.events())``. The subscription is made on first use
    (``__aenter__`` or the first ``__anext__``); the stream ends (``StopAsyncIteration``)
    after ``aclose()`` (from any task of the client's trio run) or when the client closes.
    Cancelling one ``__anext__`` does not end the stream.
    """

    async def __aenter__(self) -> EventStream:
        """Enter the stream: the trio client subscribes here, the asyncio client's
        stream on its first ``__anext__``.

        Returns:
            The stream itself.
        """
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> EventStream:
        return self

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Unsubscribe and end the stream; idempotent."""


class TrioEventStream(EventStream):
    """The trio client's EventStream: a memory channel fed by the client's inbox."""

    def __init__(self, buffer: int, subscribe: Subscribe, unsubscribe: Unsubscribe) -> None:
        self._buffer = buffer
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self._send: trio.MemorySendChannel[Event] | None = None
        self._receive: trio.MemoryReceiveChannel[Event] | None = None
        self._closed = False
        try:
            self._token: trio.lowlevel.TrioToken | None = trio.lowlevel.current_trio_token()
        except RuntimeError:
            self._token = None

    async def _open(self) -> trio.MemoryReceiveChannel[Event]:
        if self._receive is None:
            send, receive = trio.open_memory_channel[Event](self._buffer)
            self._send, self._receive = send, receive
            await self._subscribe(send)
        return self._receive

    async def __aenter__(self) -> TrioEventStream:
        """Subscribe now (rather than on the first ``__anext__``).

        Returns:
            The stream itself.

        Raises:
            ConnectionFailed: the control plane stayed unreachable for the client's
                ``reconnect_timeout``.
        """
        if not self._closed:
            await self._open()
        return self

    async def __anext__(self) -> Event:
        """The next event, waiting for it.

        Returns:
            The next task or worker event.

        Raises:
            StopAsyncIteration: the stream was closed, or the client closed.
            ConnectionFailed: subscribing (on first use) found the control plane
                unreachable for the client's ``reconnect_timeout``.
        """
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise StopAsyncIteration
        receive = await self._open()
        try:
            return await receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self._detach()
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Unsubscribe and end the stream; idempotent. A task waiting in ``__anext__``
        gets ``StopAsyncIteration``."""
        self._detach()
        await trio.lowlevel.checkpoint()

    @property
    def closed(self) -> bool:
        """True once the stream was closed (by ``aclose()`` or the client closing)."""
        return self._closed

    def _detach(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._send is not None:
            self._unsubscribe(self._send)
            self._send.close()

    def __del__(self) -> None:
        # A bare ``async for`` that stopped early: unsubscribe in the client's trio run.
        if self._closed or self._send is None:
            return
        try:
            if trio.lowlevel.current_trio_token() is self._token:
                self._detach()
                return
        except RuntimeError:
            pass
        if self._token is not None:
            try:
                self._token.run_sync_soon(self._detach)
            except trio.RunFinishedError:
                pass
