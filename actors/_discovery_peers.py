"""What discovery learns from the beacons it hears; pure bookkeeping, no trio, no sockets.

:class:`PeerTable` is a listener's table of live peers (fed beacons and clock readings,
it says who appeared and who expired); :class:`QueryAnswers` is what a peer query
gathered: the trusted peers of the asked-for role, and the ones refused for a secret
that does not match.
"""

from __future__ import annotations

import contextlib
from typing import TypeAlias

import attrs

from actors._discovery_beacon import Beacon, DiscoveryConfig, decode_beacon, rejection_reason
from actors._errors import DiscoveryError


@attrs.frozen
class PeerInfo:
    """What a listener knows about one live peer; ``last_seen`` is in ``trio.current_time()``."""

    node_id: str
    role: str
    url: str
    cluster: str
    protocol_version: int
    address: tuple[str, int]
    last_seen: float


@attrs.frozen
class PeerAppeared:
    """A peer was heard for the first time (or came back with a new role, url or version)."""

    peer: PeerInfo


@attrs.frozen
class PeerDisappeared:
    """A peer expired, or its announced role, url or version changed (``peer`` is the old one)."""

    peer: PeerInfo


PeerEvent: TypeAlias = PeerAppeared | PeerDisappeared
"""Either kind of peer table change."""


def _peer_info(beacon: Beacon, address: tuple[str, int], now: float) -> PeerInfo:
    b = beacon
    return PeerInfo(b.node_id, b.role, b.url, b.cluster, b.protocol_version, address, now)


class PeerTable:
    """The pure peer bookkeeping of a listener: feed it beacons and clock readings."""

    def __init__(self, expiry: float) -> None:
        self._expiry = expiry
        self._peers: dict[str, PeerInfo] = {}

    def peers(self) -> dict[str, PeerInfo]:
        """Return a copy of the table keyed by node id."""
        return dict(self._peers)

    def observe(self, beacon: Beacon, address: tuple[str, int], now: float) -> list[PeerEvent]:
        """Record ``beacon`` heard from ``address`` at ``now``; return the resulting events."""
        new = _peer_info(beacon, address, now)
        old = self._peers.get(beacon.node_id)
        self._peers[beacon.node_id] = new
        if old is None:
            return [PeerAppeared(new)]
        if (old.role, old.url, old.protocol_version) != (new.role, new.url, new.protocol_version):
            return [PeerDisappeared(old), PeerAppeared(new)]
        return []

    def expire(self, now: float) -> list[PeerEvent]:
        """Drop every peer not heard for ``expiry`` seconds as of ``now``; return the events."""
        gone = [p for p in self._peers.values() if now - p.last_seen >= self._expiry]
        for peer in gone:
            del self._peers[peer.node_id]
        return [PeerDisappeared(peer) for peer in gone]

    def next_deadline(self) -> float | None:
        """Return when the next peer would expire if not heard again, or None if empty."""
        if not self._peers:
            return None
        return min(p.last_seen for p in self._peers.values()) + self._expiry


@attrs.frozen
class Refusal:
    """A node of the asked-for cluster that answered with a beacon we cannot trust."""

    url: str
    address: tuple[str, int]
    reason: str
    """"bad-signature" (another secret) or "unsigned" (it has no secret, we do)."""


class QueryAnswers:
    """The pure bookkeeping of a peer query: who answered "I play ``role``", and who
    answered but cannot be trusted.

    Answers to queries and ordinary beacons both count; a peer is keyed by its URL, so
    one that restarted is still one peer.
    """

    def __init__(self, config: DiscoveryConfig, role: str) -> None:
        self._config = config
        self._role = role
        self._found: dict[str, PeerInfo] = {}
        self._refused: dict[str, Refusal] = {}

    def peers(self) -> list[PeerInfo]:
        """The trusted peers heard so far, by URL order."""
        return [self._found[u] for u in sorted(self._found)]

    def refusals(self) -> list[Refusal]:
        """Peers of the cluster heard with a signature that does not match ours."""
        return [self._refused[u] for u in sorted(self._refused)]

    def observe(
        self,
        data: bytes,
        address: tuple[str, int],
        now: float,
        *,
        wall_time: float | None = None,
    ) -> bool:
        """Take one datagram heard from ``address`` at ``now``; True if it was an answer.

        ``wall_time`` (default ``time.time()``) is what a signed beacon's age is checked
        against. Datagrams of other clusters or roles, and junk, change nothing.
        """
        config = self._config
        try:
            beacon = decode_beacon(
                data, secret=config.secret, now=wall_time, max_age=config.max_age
            )
        except DiscoveryError as exc:
            reason = rejection_reason(exc)
            if reason in ("bad-signature", "unsigned"):
                with contextlib.suppress(DiscoveryError):
                    other = decode_beacon(data)
                    if other.cluster == config.cluster and other.role == self._role:
                        self._refused[other.url] = Refusal(other.url, address, reason)
                        return True
            return False
        if beacon.cluster != config.cluster or beacon.role != self._role:
            return False
        self._found[beacon.url] = _peer_info(beacon, address, now)
        return True
