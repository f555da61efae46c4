"""The listening side of discovery: a live table of the peers heard on the discovery port.

:class:`DiscoveryListener` is a thin trio shell around the pure :class:`PeerTable`: it
feeds it the beacons its socket hears, expires peers on time, and fans the resulting
events out to bounded per-subscriber streams.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from actors._discovery_beacon import (
    MAX_DATAGRAM_SIZE,
    DiscoveryConfig,
    decode_beacon,
    rejection_reason,
)
from actors._discovery_peers import PeerAppeared, PeerEvent, PeerInfo, PeerTable
from actors._discovery_udp import _reusable_udp_socket, logger
from actors._errors import DiscoveryError

EVENT_BUFFER_SIZE = 128


@attrs.frozen
class DiscoveryStatistics:
    """Counters of a listener: datagrams received, beacons accepted, ignored ones by reason."""

    received: int
    accepted: int
    ignored: dict[str, int]
    peers: int
    events_dropped: int = 0


class PeerEventStream(AsyncIterator[PeerEvent]):
    """One subscriber's events; when it lags, the oldest are dropped and counted in ``dropped``.

    It ends when the listener closes (after the buffered events) or after :meth:`aclose`.
    """

    def __init__(self, buffer: int, detach: Callable[[PeerEventStream], None]) -> None:
        self._queue: deque[PeerEvent] = deque()
        self._buffer = buffer
        self._detach = detach
        self._closed = False
        self._wakeup = trio.Event()
        self.dropped = 0

    async def __anext__(self) -> PeerEvent:
        await trio.lowlevel.checkpoint()
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._wakeup = trio.Event()
            await self._wakeup.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        """Unsubscribe: drop buffered events and end the iteration."""
        self._close()
        self._queue.clear()
        self._detach(self)
        await trio.lowlevel.checkpoint()

    def _push(self, event: PeerEvent) -> bool:
        dropped = len(self._queue) >= self._buffer
        if dropped:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wakeup.set()
        return dropped

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()


class DiscoveryListener:
    """A live view of the peers heard on the discovery port; made by open_discovery_listener."""

    def __init__(self, config: DiscoveryConfig, *, ignore_node_id: str | None = None) -> None:
        self._config = config
        self._ignore_node_id = ignore_node_id
        self._table = PeerTable(config.expiry)
        self._subscribers: set[PeerEventStream] = set()
        self._appeared = trio.Event()
        self._closed = False
        self._received = self._accepted = self._dropped = 0
        self._ignored: dict[str, int] = {}

    def peers(self) -> dict[str, PeerInfo]:
        """Return a copy of the current peer table keyed by node id."""
        return self._table.peers()

    def events(self, *, buffer: int = EVENT_BUFFER_SIZE) -> PeerEventStream:
        """Subscribe to peer events from now on; each call gets its own bounded stream."""
        stream = PeerEventStream(buffer, self._subscribers.discard)
        if self._closed:
            stream._close()
        else:
            self._subscribers.add(stream)
        return stream

    async def wait_for_peer(self, role: str | None = None) -> PeerInfo:
        """Return a known peer (with ``role``, if given) at once, else wait for one to appear.

        Raises:
            DiscoveryError: the listener closed before one appeared.
        """
        while True:
            await trio.lowlevel.checkpoint()
            for peer in self._table.peers().values():
                if role is None or peer.role == role:
                    return peer
            if self._closed:
                raise DiscoveryError("discovery listener is closed")
            await self._appeared.wait()

    def statistics(self) -> DiscoveryStatistics:
        """Return a snapshot of the listener's counters."""
        return DiscoveryStatistics(
            self._received,
            self._accepted,
            dict(self._ignored),
            len(self._table.peers()),
            self._dropped,
        )

    def _handle(self, data: bytes, address: tuple[str, int]) -> None:
        config = self._config
        self._received += 1
        try:
            beacon = decode_beacon(data, secret=config.secret, max_age=config.max_age)
        except DiscoveryError as exc:
            self._ignore(rejection_reason(exc), address, str(exc))
            return
        if beacon.cluster != config.cluster:
            self._ignore("foreign-cluster", address, f"cluster {beacon.cluster!r}")
        elif beacon.node_id == self._ignore_node_id:
            self._ignore("self", address, "own beacon")
        else:
            self._accepted += 1
            self._publish(self._table.observe(beacon, address, trio.current_time()))

    def _ignore(self, reason: str, address: tuple[str, int], detail: str) -> None:
        self._ignored[reason] = self._ignored.get(reason, 0) + 1
        logger.debug("ignoring datagram from %s:%d (%s): %s", *address, reason, detail)

    def _publish(self, events: list[PeerEvent]) -> None:
        for event in events:
            for stream in self._subscribers:
                self._dropped += stream._push(event)
            if isinstance(event, PeerAppeared):
                self._appeared.set()
                self._appeared = trio.Event()

    def _close(self) -> None:
        self._closed = True
        for stream in self._subscribers:
            stream._close()
        self._subscribers.clear()
        self._appeared.set()

    async def _receive_loop(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, address = await sock.recvfrom(MAX_DATAGRAM_SIZE)
            except OSError as exc:
                logger.warning("discovery receive failed: %s", exc)
                await trio.sleep(self._config.interval)
                continue
            self._handle(data, (str(address[0]), int(address[1])))

    async def _expiry_loop(self) -> None:
        while True:
            deadline = self._table.next_deadline()
            if deadline is None:
                await self._appeared.wait()
            else:
                await trio.sleep_until(deadline)
                self._publish(self._table.expire(trio.current_time()))


@asynccontextmanager
async def open_discovery_listener(
    config: DiscoveryConfig, *, ignore_node_id: str | None = None
) -> AsyncIterator[DiscoveryListener]:
    """Listen for beacons on ``config.port``; leaving the block closes it and ends all events.

    The socket uses SO_REUSEADDR and SO_REUSEPORT (where available) so several nodes on one
    host can listen together.

    Raises:
        DiscoveryError: the port cannot be bound.
    """
    with _reusable_udp_socket() as sock:
        try:
            await sock.bind((config.bind_address, config.port))
        except OSError as exc:
            where = f"{config.bind_address or '*'}:{config.port}"
            raise DiscoveryError(f"cannot bind discovery socket to {where}: {exc}") from exc
        listener = DiscoveryListener(config, ignore_node_id=ignore_node_id)
        body_error: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(listener._receive_loop, sock)
                nursery.start_soon(listener._expiry_loop)
                try:
                    yield listener
                except BaseException as exc:  # re-raised below, unwrapped by the nursery
                    body_error = exc
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            listener._close()
        if body_error is not None:
            raise body_error
