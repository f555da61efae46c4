"""UDP discovery: nodes broadcast small beacons and listeners keep a table of live peers.

The story, bottom to top (each module imports only the ones before it):

- ``_discovery_beacon``: the wire format, pure: ``Beacon`` and its signed codec, the
  query datagram, ``DiscoveryConfig``;
- ``_discovery_peers``: what is learnt from beacons, pure: the ``PeerTable`` of a
  listener and the ``QueryAnswers`` of a query;
- ``_discovery_udp``: the sockets (shared ports, where to bind);
- ``_discovery_announcer``: ``run_beacon``, a node announcing itself and answering queries;
- ``_discovery_listener``: ``open_discovery_listener``, a live table of peers;
- ``_discovery_query``: ``open_peer_query``, asking who plays a role.

This module gathers their names (``actors`` exports the public ones).
"""

from __future__ import annotations

from actors._discovery_announcer import run_beacon
from actors._discovery_beacon import (
    DEFAULT_BROADCAST_ADDRESS,
    DEFAULT_DISCOVERY_PORT,
    MAX_BEACON_SIZE,
    MAX_DATAGRAM_SIZE,
    PROTOCOL_VERSION,
    Beacon,
    DiscoveryConfig,
    decode_beacon,
    decode_query,
    encode_beacon,
    encode_query,
    rejection_reason,
)
from actors._discovery_listener import (
    EVENT_BUFFER_SIZE,
    DiscoveryListener,
    DiscoveryStatistics,
    PeerEventStream,
    open_discovery_listener,
)
from actors._discovery_peers import (
    PeerAppeared,
    PeerDisappeared,
    PeerEvent,
    PeerInfo,
    PeerTable,
    QueryAnswers,
    Refusal,
)
from actors._discovery_query import PeerQuery, open_peer_query
from actors._discovery_udp import _listen_address  # noqa: F401 (imported from here by tests)

__all__ = [
    "DEFAULT_BROADCAST_ADDRESS",
    "DEFAULT_DISCOVERY_PORT",
    "EVENT_BUFFER_SIZE",
    "MAX_BEACON_SIZE",
    "MAX_DATAGRAM_SIZE",
    "PROTOCOL_VERSION",
    "Beacon",
    "DiscoveryConfig",
    "DiscoveryListener",
    "DiscoveryStatistics",
    "PeerAppeared",
    "PeerDisappeared",
    "PeerEvent",
    "PeerEventStream",
    "PeerInfo",
    "PeerQuery",
    "PeerTable",
    "QueryAnswers",
    "Refusal",
    "decode_beacon",
    "decode_query",
    "encode_beacon",
    "encode_query",
    "open_discovery_listener",
    "open_peer_query",
    "rejection_reason",
    "run_beacon",
]
