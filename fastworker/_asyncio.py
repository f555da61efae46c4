"""The Client under asyncio: the same methods, run by the process's trio thread.

``open_client`` under asyncio lands here (``_open_client`` picks it). The trio client
lives in the shared trio thread (``_portal``, held open by ``_held_client``); each
awaited method starts its trio twin there and awaits the outcome in the asyncio loop.
Cancelling the asyncio task cancels the trio twin.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncGenerator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

from ._client import Client, ClientStatistics
from ._client_settings import ClientSettings
from ._event_stream import EventStream
from ._held_client import Holder
from ._model import TaskResult, TaskStatus
from ._portal import Portal, get_portal
from ._records import ClusterStats, Event


class AsyncioClient(Client):
    """A Client whose methods are awaited in an asyncio loop (from ``open_client``).

    Every method is the trio Client's, with the same arguments, results and errors
    (see Client: its docstrings name them), run in the process's trio thread;
    cancelling the awaiting asyncio task cancels the call there. A call also raises
    ConnectionFailed if that trio thread has stopped.
    """

    def __init__(self, inner: Client, portal: Portal) -> None:
        # Not Client.__init__: every call goes to the trio client ``inner``.
        self._inner = inner
        self._portal = portal
        self.max_payload = inner.max_payload
        self.reconnect_timeout = inner.reconnect_timeout

    @property
    def url(self) -> str:
        """The control plane's URL."""
        return self._inner.url

    @property
    def connected(self) -> bool:
        """True while linked and registered."""
        return self._inner.connected

    @property
    def events_dropped(self) -> int:
        """Events dropped because an ``events()`` consumer fell behind."""
        return self._inner.events_dropped

    def new_id(self) -> str:
        """A fresh, unique task id."""
        return self._inner.new_id()

    def statistics(self) -> ClientStatistics:
        """The trio client's bookkeeping (read across threads: a snapshot)."""
        return self._inner.statistics()

    async def submit(self, *args: Any, **kwargs: Any) -> str:
        return await self._portal.run_async(self._inner.submit, *args, **kwargs)

    async def delay(self, *args: Any, **kwargs: Any) -> str:
        return await self._portal.run_async(self._inner.delay, *args, **kwargs)

    async def delay_batch(self, *args: Any, **kwargs: Any) -> list[str]:
        return await self._portal.run_async(self._inner.delay_batch, *args, **kwargs)

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        return await self._portal.run_async(self._inner.call, *args, **kwargs)

    async def result(self, task_id: str) -> TaskResult:
        return await self._portal.run_async(self._inner.result, task_id)

    async def gather(self, task_ids: Sequence[str]) -> list[TaskResult]:
        return await self._portal.run_async(self._inner.gather, list(task_ids))

    async def get_result(self, task_id: str) -> TaskResult | None:
        return await self._portal.run_async(self._inner.get_result, task_id)

    async def status(self, task_id: str) -> TaskStatus | None:
        return await self._portal.run_async(self._inner.status, task_id)

    async def cancel(self, task_id: str) -> bool:
        return await self._portal.run_async(self._inner.cancel, task_id)

    async def stats(self) -> ClusterStats:
        return await self._portal.run_async(self._inner.stats)

    def events(self, *, buffer: int = 1000) -> EventStream:
        """Task and worker events as they happen, in the asyncio loop.

        A closable stream, as with the trio client: ``async with client.events() as
        stream: async for event in stream: ...``. A consumer more than ``buffer`` events
        behind loses the newest ones (counted in ``events_dropped``).

        Args:
            buffer: events held for this consumer before new ones are dropped.

        Returns:
            A new EventStream, iterated in the asyncio loop.
        """
        return _AsyncioEventStream(self._events(buffer))

    async def _events(self, buffer: int) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        queue: collections.deque[Any] = collections.deque()
        wakeup = asyncio.Event()
        end = object()
        inner = self._inner

        def push(item: Any) -> None:
            if item is not end and len(queue) >= buffer:
                inner._events_dropped += 1
                return
            queue.append(item)
            wakeup.set()

        async def pump() -> None:
            try:
                async for event in inner.events(buffer=buffer):
                    loop.call_soon_threadsafe(push, event)
            finally:
                try:
                    loop.call_soon_threadsafe(push, end)
                except RuntimeError:
                    pass

        scope = self._portal.start_nowait(pump)
        try:
            while True:
                while not queue:
                    wakeup.clear()
                    await wakeup.wait()
                item = queue.popleft()
                if item is end:
                    return
                yield item
        finally:
            self._portal.cancel(scope)


class _AsyncioEventStream(EventStream):
    """An EventStream over the asyncio client's event generator."""

    def __init__(self, events: AsyncGenerator[Event, None]) -> None:
        self._events = events

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Unsubscribe and end the stream; idempotent."""
        await self._events.aclose()


class open_asyncio_client(AbstractAsyncContextManager[Client]):
    """The asyncio side of ``open_client``: connects in the trio thread, closes on exit."""

    def __init__(self, settings: ClientSettings) -> None:
        self._portal = get_portal()
        self._holder = Holder(self._portal, settings)

    async def __aenter__(self) -> Client:
        inner = await self._portal.run_async(self._holder.open)
        return AsyncioClient(inner, self._portal)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if not self._portal.alive:  # the thread ended (or a forked child): closed with it
            return None
        await asyncio.shield(self._portal.run_async(self._holder.close))
        return None
