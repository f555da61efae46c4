"""Asking instead of waiting: "who plays ``role`` in this cluster?", and the answers.

:class:`PeerQuery` is a thin trio shell around the pure :class:`QueryAnswers`: it sends
the query (backing off to the beacon period) and feeds it what its sockets hear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from actors._discovery_beacon import MAX_DATAGRAM_SIZE, DiscoveryConfig, encode_query
from actors._discovery_peers import PeerInfo, QueryAnswers, Refusal
from actors._discovery_udp import _broadcast_socket, _reusable_udp_socket, logger
from actors._errors import DiscoveryError


class PeerQuery:
    """The answers to "who plays ``role`` in this cluster?" (from ``open_peer_query``).

    Answers to queries and ordinary beacons both count; a peer is keyed by its URL, so
    one that restarted is still one peer.
    """

    def __init__(self, config: DiscoveryConfig, role: str) -> None:
        self._config = config
        self._role = role
        self._answers = QueryAnswers(config, role)
        self._changed = trio.Event()

    def peers(self) -> list[PeerInfo]:
        """The trusted peers heard so far, by URL order."""
        return self._answers.peers()

    def refusals(self) -> list[Refusal]:
        """Peers of the cluster heard with a signature that does not match ours."""
        return self._answers.refusals()

    async def wait_for_peers(self, grace: float = 0.05) -> list[PeerInfo]:
        """Wait for a first peer, then ``grace`` seconds more for others; all of them.

        The caller owns the timeout.
        """
        while not self._answers.peers():
            await self._changed.wait()
        await trio.sleep(grace)
        return self.peers()

    def _handle(self, data: bytes, address: tuple[str, int]) -> None:
        if self._answers.observe(data, address, trio.current_time()):
            self._changed.set()
            self._changed = trio.Event()

    async def _receive(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, address = await sock.recvfrom(MAX_DATAGRAM_SIZE)
            except OSError as exc:
                logger.debug("discovery receive failed: %s", exc)
                await trio.sleep(0.1)
                continue
            self._handle(data, (str(address[0]), int(address[1])))

    async def _ask(self, sock: trio.socket.SocketType, interval: float) -> None:
        query = encode_query(self._config.cluster, self._role)
        target = (self._config.broadcast_address, self._config.port)
        while True:
            try:
                await sock.sendto(query, target)
            except OSError as exc:
                logger.debug("discovery query to %s:%d failed: %s", *target, exc)
            await trio.sleep(interval)
            interval = min(interval * 2, self._config.interval)


@asynccontextmanager
async def open_peer_query(
    config: DiscoveryConfig, role: str, *, interval: float = 0.1
) -> AsyncIterator[PeerQuery]:
    """Ask the network who plays ``role`` in ``config.cluster`` and gather the answers.

    A query goes to the broadcast address at once and again every ``interval`` seconds
    (backing off to the beacon period); nodes that answer queries reply at once. Beacons
    heard on the discovery port count too (nodes that do not answer queries, or other
    hosts when ``broadcast_address`` is loopback).

    Raises:
        DiscoveryError: no socket can be opened.
    """
    query = PeerQuery(config, role)
    with _broadcast_socket() as asker:
        try:
            await asker.bind(("", 0))
        except OSError as exc:
            raise DiscoveryError(f"cannot open a discovery socket: {exc}") from exc
        with _reusable_udp_socket() as listener:
            try:
                await listener.bind((config.bind_address, config.port))
            except OSError as exc:  # the queries alone may still find it
                logger.debug("cannot listen for beacons on port %d: %s", config.port, exc)
                listening = False
            else:
                listening = True
            body_error: BaseException | None = None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(query._receive, asker)
                if listening:
                    nursery.start_soon(query._receive, listener)
                nursery.start_soon(query._ask, asker, interval)
                try:
                    yield query
                except BaseException as exc:  # re-raised below, unwrapped by the nursery
                    body_error = exc
                finally:
                    nursery.cancel_scope.cancel()
            if body_error is not None:
                raise body_error
