"""A small, generic actor runtime on trio.

Actors with bounded mailboxes, ``tell``/``ask`` refs that look the same locally and
remotely, supervisors with restart policies, links between nodes over websockets (or
an in-memory transport for tests), msgpack + cattrs messages, and UDP discovery.
It knows nothing about task queues.
"""

from ._actor import Actor
from ._codec import Codec, Kind, message, message_name, registered_messages
from ._discovery import (
    DEFAULT_BROADCAST_ADDRESS,
    DEFAULT_DISCOVERY_PORT,
    Beacon,
    DiscoveryConfig,
    DiscoveryListener,
    PeerAppeared,
    PeerDisappeared,
    PeerInfo,
    PeerQuery,
    Refusal,
    open_discovery_listener,
    open_peer_query,
    run_beacon,
)
from ._errors import (
    ActorCrashed,
    ActorError,
    ActorGone,
    ActorNotFound,
    AuthenticationError,
    AuthenticationFailed,
    BodyError,
    CodecError,
    ConnectFailed,
    ConnectionFailed,
    DiscoveryError,
    EscalationError,
    HandshakeError,
    LinkClosed,
    LinkError,
    MailboxFull,
    MessageTooLarge,
    NameTaken,
    PeerDown,
    RemoteError,
    UnknownMessageType,
)
from ._intensity import RestartIntensity
from ._link import Link
from ._link_protocol import PROTOCOL_VERSION, Hello, LinkConfig
from ._mailbox import DeadLetters, Delivery, Mailbox, MailboxStatistics, Overflow
from ._peer import LinkDown, LinkUp, Peer, RemoteRef
from ._ref import LocalRef
from ._ref_base import ActorRef, Future, Reply
from ._supervisor import Restart, Supervisor, SupervisorStatistics
from ._system import ActorSystem, Context, SystemConfig, SystemStatistics, open_actor_system
from ._transport import Connection, MemoryConnection, MemoryNetwork, Transport, memory_network

__all__ = [
    "DEFAULT_BROADCAST_ADDRESS",
    "DEFAULT_DISCOVERY_PORT",
    "PROTOCOL_VERSION",
    "Actor",
    "ActorCrashed",
    "ActorError",
    "ActorGone",
    "ActorNotFound",
    "ActorRef",
    "ActorSystem",
    "AuthenticationError",
    "AuthenticationFailed",
    "Beacon",
    "BodyError",
    "Codec",
    "CodecError",
    "ConnectFailed",
    "Connection",
    "ConnectionFailed",
    "Context",
    "DeadLetters",
    "Delivery",
    "DiscoveryConfig",
    "DiscoveryError",
    "DiscoveryListener",
    "EscalationError",
    "Future",
    "HandshakeError",
    "Hello",
    "Kind",
    "Link",
    "LinkClosed",
    "LinkConfig",
    "LinkDown",
    "LinkError",
    "LinkUp",
    "LocalRef",
    "Mailbox",
    "MailboxFull",
    "MailboxStatistics",
    "MemoryConnection",
    "MemoryNetwork",
    "MessageTooLarge",
    "NameTaken",
    "Overflow",
    "Peer",
    "PeerAppeared",
    "PeerDisappeared",
    "PeerDown",
    "PeerInfo",
    "PeerQuery",
    "Refusal",
    "RemoteError",
    "RemoteRef",
    "Reply",
    "Restart",
    "RestartIntensity",
    "Supervisor",
    "SupervisorStatistics",
    "SystemConfig",
    "SystemStatistics",
    "Transport",
    "UnknownMessageType",
    "memory_network",
    "message",
    "message_name",
    "open_actor_system",
    "open_discovery_listener",
    "open_peer_query",
    "registered_messages",
    "run_beacon",
]
