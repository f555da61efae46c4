"""Events: the streams of task and worker events, and the client's statistics."""

from __future__ import annotations

import trio

import actors

from .._event_stream import EventStream, TrioEventStream
from .._messages import SubscribeEvents, WireEvent
from .._records import Event, events_from_wire
from ._results import ResultsMixin
from ._types import ClientStatistics


class EventsMixin(ResultsMixin):
    """events() streams fed by the control plane's pushes."""

    async def _subscribe(self, send: trio.MemorySendChannel[Event]) -> None:
        """Add an events() stream; the first one subscribes this client."""
        first = not self._event_channels
        self._event_channels.append(send)
        if first:
            try:
                await self._tell(SubscribeEvents(True))
            except BaseException:
                self._unsubscribe(send)
                raise

    def _unsubscribe(self, send: trio.MemorySendChannel[Event]) -> None:
        """Remove an events() stream; after the last one, the control plane stops pushing."""
        if send not in self._event_channels:
            return
        self._event_channels.remove(send)
        if not self._event_channels and self.peer.connected and self._connection:
            try:
                self._connection.tell_nowait(SubscribeEvents(False))
            except actors.ActorError:
                pass

    def events(self, *, buffer: int = 1000) -> EventStream:
        """Task and worker events as they happen: Event records (``kind`` an EventKind,
        ``status`` a TaskStatus or WorkerStatus, both str enums).

        A closable stream: ``async with client.events() as stream: async for event in
        stream: ...`` (``async for event in client.events()`` works too). It ends when
        closed or when the client closes. A consumer that falls more than ``buffer``
        events behind loses the events that arrive while its buffer is full (counted in
        ``events_dropped``), so a slow reader never slows the cluster.

        Args:
            buffer: events held for this consumer before new ones are dropped.

        Returns:
            A new EventStream; it subscribes on ``async with`` or first iteration,
            where it raises ConnectionFailed if the control plane stays unreachable.
        """
        return TrioEventStream(buffer, self._subscribe, self._unsubscribe)

    @property
    def events_dropped(self) -> int:
        """Events dropped because an ``events()`` consumer fell behind."""
        return self._events_dropped

    def statistics(self) -> ClientStatistics:
        """What this client holds: ids waited for, waits, submissions in flight."""
        return ClientStatistics(
            waited_ids=len(self._waiters),
            waiters=sum(len(w) for w in self._waiters.values()),
            submitting=len(self._submitting),
            event_streams=len(self._event_channels),
            connected=self.connected,
        )

    def _publish(self, wire: list[WireEvent]) -> None:
        """Hand pushed events, as records, to every events() stream."""
        if not self._event_channels:
            return
        events = events_from_wire(wire)
        for channel in self._event_channels:
            for event in events:
                try:
                    channel.send_nowait(event)
                except trio.WouldBlock:
                    self._events_dropped += 1
