"""What a node is to the parts that run inside it: its settings, and the ``Node`` protocol.

The handshake, the link and the peer run inside an ``ActorSystem`` but sit below it in
the import order, so they never name it: each takes the node as a :class:`Node`, the
small part of ``ActorSystem`` they use (who the node is, its settings and codec, its
dead letters and nursery, and its actors by name). ``ActorSystem`` satisfies it.
"""

from __future__ import annotations

from typing import Protocol

import attrs
import trio

from ._codec import Codec
from ._link_protocol import LinkConfig
from ._mailbox import DeadLetters, Overflow
from ._ref import LocalRef


@attrs.frozen
class SystemConfig:
    """Per-node settings. ``secret`` (bytes) turns on HMAC authentication of every link."""

    cluster: str = "default"
    role: str = "node"
    secret: bytes | None = None
    mailbox_capacity: int = 1000
    overflow: Overflow = Overflow.REJECT
    max_restarts: int = 3
    restart_window: float = 5.0
    link: LinkConfig = attrs.field(factory=LinkConfig)


class Node(Protocol):
    """What the handshake, a link and a peer need of the node they run in."""

    node_id: str
    config: SystemConfig
    codec: Codec
    dead_letters: DeadLetters

    @property
    def cluster(self) -> str:
        """The cluster name this node belongs to."""
        ...

    @property
    def role(self) -> str:
        """This node's role, announced in hellos."""
        ...

    @property
    def nursery(self) -> trio.Nursery:
        """The node's root nursery (for work that outlives one link)."""
        ...

    def lookup(self, name: str) -> LocalRef | None:
        """The ref of a running local actor, or None."""
        ...
