"""The dashboard's observer actor: fed by the control plane, read by the HTTP app.

It is the control plane's observer (``observe``, called in the control plane's turn
after each batch with lists it built anyway: accepted, dispatched, requeued,
finished); it keeps the
recent-task ring and the metric counters, wakes long-polls, tells the page streams
that something changed, and, while an ``/api/v1/events`` client is connected,
subscribes to the control plane's event stream and fans it out. Everything it sends
onwards is ``send_nowait`` into bounded channels: a slow HTTP client loses events (and
is told how many), it never slows the control plane.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from actors import Actor, ActorRef, Context, Delivery

from .. import _names as names
from .._messages import Events, Outcome, Results, Run, Submission, Unknown
from .._protocol import EventSubscription, WatchIds
from .._records import Event, events_from_wire
from ._counters import Histogram
from ._ring import RecentTasks

log = logging.getLogger("fastworker.dashboard")

HUB = names.DASHBOARD
EVENT_STREAM_BUFFER = 256
"""Batches of events an ``/api/v1/events`` connection may lag behind before losing some."""


class EventStream:
    """One ``/api/v1/events`` connection: a bounded channel of event batches."""

    def __init__(self, buffer: int = EVENT_STREAM_BUFFER) -> None:
        self.send, self.receive = trio.open_memory_channel[list[Event]](buffer)
        self.dropped = 0


class Hub(Actor):
    """Observer of the control plane for the dashboard, the API and the metrics."""

    batch_limit = 4096

    def __init__(
        self, control_plane: ActorRef, ring: RecentTasks, clock: Callable[[], float]
    ) -> None:
        self.control_plane = control_plane
        self.ring = ring
        self.clock = clock
        self.ref: ActorRef | None = None
        self.changed = trio.Event()
        self.version = 0
        """Batches observed; a reader that saw an older one has news waiting."""
        self.page_waiters = 0
        self.streams: set[EventStream] = set()
        self.journal_commits = Histogram()
        self.cpu_seconds = 0.0
        """CPU time spent feeding the ring and the page streams (what the dashboard costs
        the control plane's thread)."""
        self._waiters: dict[str, list[trio.Event]] = {}

    async def started(self, ctx: Context) -> None:
        """Remember our ref (for watches and event subscriptions)."""
        self.ref = ctx.self

    def observe(
        self,
        submissions: list[Submission],
        dispatched: list[tuple[str, list[Run]]],
        requeued: list[tuple[str, str, str]],
        outcomes: list[Outcome],
    ) -> None:
        """The control plane's observer: called in its turn after each batch."""
        began = time.thread_time()
        ring = self.ring
        now = self.clock()
        if submissions:
            ring.submitted(submissions, now)
        if requeued:
            ring.requeued(requeued, now)
        for worker, runs in dispatched:
            ring.dispatched(worker, runs, now)
        if outcomes:
            ring.outcomes(outcomes, now)
        self.version += 1
        if self.page_waiters:
            changed, self.changed = self.changed, trio.Event()
            changed.set()
        self.cpu_seconds += time.thread_time() - began

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Wake long-polls (Results, Unknown) and fan out events."""
        for delivery in batch:
            msg = delivery.message
            kind = type(msg)
            if kind is Events:
                if self.streams:
                    self._fan_out(events_from_wire(msg.events))
            elif kind is Results:
                self._wake(o.id for o in msg.outcomes)
            elif kind is Unknown:
                self._wake(msg.ids)
            else:
                await self.handle(ctx, delivery)

    async def wait_changed(self) -> None:
        """Return after the next batch the observer sees (the caller owns the timeout)."""
        self.page_waiters += 1
        try:
            await self.changed.wait()
        finally:
            self.page_waiters -= 1

    async def receive(self, ctx: Context, message: Any) -> Any:
        """Nothing else is expected."""
        raise TypeError(f"the dashboard hub does not handle {type(message).__name__}")

    def _fan_out(self, events: list[Event]) -> None:
        for stream in self.streams:
            try:
                stream.send.send_nowait(events)
            except trio.WouldBlock:
                stream.dropped += len(events)

    def _wake(self, ids: Any) -> None:
        waiters = self._waiters
        if not waiters:
            return
        for task_id in ids:
            for event in waiters.pop(task_id, ()):
                event.set()

    # -- for the HTTP app -------------------------------------------------------------
    async def open_stream(self) -> EventStream:
        """A new ``/api/v1/events`` stream; the first one subscribes to the events.

        The control plane makes events only while someone subscribes, so the page and
        the metrics (fed by ``observe``) cost it nothing per event.
        """
        stream = EventStream()
        self.streams.add(stream)
        if len(self.streams) == 1 and self.ref is not None:
            await self.control_plane.tell(EventSubscription(self.ref, True))
        return stream

    def close_stream(self, stream: EventStream) -> None:
        """Forget a stream; the last one unsubscribes."""
        self.streams.discard(stream)
        if not self.streams and self.ref is not None:
            try:
                self.control_plane.tell_nowait(EventSubscription(self.ref, False))
            except Exception as exc:
                log.debug("could not unsubscribe from events: %s", exc)

    async def wait_terminal(self, task_id: str, seconds: float) -> None:
        """Return once the task has an outcome (or is unknown), or after ``seconds``."""
        if self.ref is None:
            return
        event = trio.Event()
        self._waiters.setdefault(task_id, []).append(event)
        try:
            await self.control_plane.tell(WatchIds([task_id], self.ref))
            with trio.move_on_after(seconds):
                await event.wait()
        finally:
            waiting = self._waiters.get(task_id)
            if waiting is not None and event in waiting:
                waiting.remove(event)
                if not waiting:
                    del self._waiters[task_id]

    def journal_commit(self, seconds: float) -> None:
        """The journal's commit hook."""
        self.journal_commits.observe(seconds)
