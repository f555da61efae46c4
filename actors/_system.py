"""The ActorSystem: one per node; owns the root nursery, the actor names and the links."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs
import trio

from . import _actor
from ._actor import Actor
from ._codec import Codec
from ._errors import ActorNotFound
from ._link_protocol import LinkConfig
from ._mailbox import DeadLetters, Delivery, Mailbox, Overflow
from ._node import SystemConfig
from ._peer import LinkDown, LinkUp, Peer, serve_link
from ._ref import ActorRef, LocalRef
from ._supervisor import Restart, Supervisor
from ._transport import MemoryTransport, Transport

if TYPE_CHECKING:
    import ssl

log = logging.getLogger("actors.system")

__all__ = [
    "ActorSystem",
    "Context",
    "SystemConfig",
    "SystemStatistics",
    "open_actor_system",
    "transport_for",
]

if TYPE_CHECKING:
    Context: TypeAlias = _actor.Context["ActorSystem"]
    """What an actor incarnation can reach, with ``system`` an :class:`ActorSystem`."""
else:
    Context = _actor.Context  # one class at run time; the alias is for type checkers


@attrs.frozen
class SystemStatistics:
    """Actors, peers and dead letters of one node."""

    node_id: str
    actors: int
    peers: int
    connected_peers: int
    dead_letters: int


class ActorSystem:
    """A node: actors by name, links to other nodes, a root supervisor.

    Create it with ``open_actor_system``; leaving that block cancels every actor and
    closes every link (no orphan tasks).
    """

    def __init__(self, nursery: trio.Nursery, config: SystemConfig, node_id: str) -> None:
        self.node_id = node_id
        self.config = config
        self.codec = Codec()
        self.dead_letters = DeadLetters()
        self._nursery = nursery
        self._refs: dict[str, LocalRef] = {}
        self._peers: dict[str, Peer] = {}
        self._peer_monitors: list[ActorRef] = []
        self.root: Supervisor = Supervisor(
            self, "root", max_restarts=config.max_restarts, within=config.restart_window
        )

    @property
    def cluster(self) -> str:
        """The cluster name this node belongs to."""
        return self.config.cluster

    @property
    def role(self) -> str:
        """This node's role, announced in hellos (e.g. "control-plane")."""
        return self.config.role

    @property
    def nursery(self) -> trio.Nursery:
        """The system's root nursery (for services such as listeners and beacons)."""
        return self._nursery

    def statistics(self) -> SystemStatistics:
        """Counts of actors, peers and dead letters."""
        return SystemStatistics(
            node_id=self.node_id,
            actors=len(self._refs),
            peers=len(self._peers),
            connected_peers=sum(1 for p in self._peers.values() if p.connected),
            dead_letters=self.dead_letters.count,
        )

    # -- actors -----------------------------------------------------------------
    async def spawn(
        self,
        name: str,
        factory: Callable[[], Actor] | Actor,
        *,
        restart: Restart | str = Restart.PERMANENT,
        capacity: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> LocalRef:
        """Start an actor under the root supervisor; returns its ref once it is ready."""
        return await self.root.spawn(
            name, factory, restart=restart, capacity=capacity, overflow=overflow
        )

    def ref(self, name: str) -> LocalRef:
        """The ref of a running local actor.

        Raises:
            ActorNotFound: no actor of that name runs on this node.
        """
        ref = self._refs.get(name)
        if ref is None:
            raise ActorNotFound(f"no actor named {name!r} on node {self.node_id[:8]}")
        return ref

    def lookup(self, name: str) -> LocalRef | None:
        """The ref of a running local actor, or None."""
        return self._refs.get(name)

    def _register(self, name: str, capacity: int | None, overflow: Overflow | None) -> LocalRef:
        mailbox = Mailbox(
            name,
            capacity or self.config.mailbox_capacity,
            overflow or self.config.overflow,
            self.dead_letters,
        )
        ref = LocalRef(name, self.node_id, mailbox, self.dead_letters)
        self._refs[name] = ref
        return ref

    def _unregister(self, name: str, reason: str) -> None:
        ref = self._refs.pop(name, None)
        if ref is not None:
            ref.mailbox.close(f"actor {reason}")

    # -- links ------------------------------------------------------------------
    async def listen(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> str:
        """Accept links at ``url`` (``ws://host:port``, ``wss://...``, ``memory://name``).

        Returns the URL peers should use (with the real port when 0 was asked for).
        Runs in the system's nursery until the system closes.
        """
        transport = transport_for(url, self.config.link)
        listening: str = await self._nursery.start(transport.listen, url, self._accept, ssl_context)
        return listening

    async def _accept(self, connection: Any) -> None:
        await serve_link(self, connection, initiator=False)

    async def connect(
        self,
        url: str,
        *,
        reconnect: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Peer:
        """Open a link to the node at ``url`` and return its Peer once the hello is done.

        Retries with backoff until connected; the caller owns the timeout
        (``with trio.fail_after(5): peer = await system.connect(url)``). A refused hello
        (wrong cluster, version or secret) raises HandshakeError at once. With
        ``reconnect`` the link is re-opened with backoff whenever it drops, and the Peer
        (and every RemoteRef made from it) keeps working across reconnects.
        """
        transport: Transport = transport_for(url, self.config.link)
        peer: Peer = await self._nursery.start(
            Peer.maintain, self, transport, url, reconnect, ssl_context
        )
        return peer

    def peer(self, node_id: str) -> Peer:
        """The Peer for a node this system has (or had) a link with.

        Raises:
            ActorNotFound: this system never had a link with that node.
        """
        try:
            return self._peers[node_id]
        except KeyError:
            raise ActorNotFound(f"no link with node {node_id!r}") from None

    def peers(self) -> dict[str, Peer]:
        """Every known peer by node id (a copy)."""
        return dict(self._peers)

    def monitor_peers(self, ref: ActorRef) -> None:
        """Tell ``ref`` a LinkUp or LinkDown message whenever any link goes up or down."""
        self._peer_monitors.append(ref)

    def demonitor_peers(self, ref: ActorRef) -> None:
        """Stop telling ``ref`` about links."""
        if ref in self._peer_monitors:
            self._peer_monitors.remove(ref)

    def _peer_for(self, node_id: str, url: str | None) -> Peer:
        peer = self._peers.get(node_id)
        if peer is None:
            peer = Peer(self, node_id, url)
            self._peers[node_id] = peer
        return peer

    def _notify_peer(self, event: LinkUp | LinkDown) -> None:
        for ref in list(self._peer_monitors):
            if isinstance(ref, LocalRef):
                if ref.mailbox.closed:  # a monitor that stopped: forget it
                    self._peer_monitors.remove(ref)
                    continue
                ref.mailbox.put_system(Delivery(event))
            else:
                try:
                    ref.tell_nowait(event)
                except Exception as exc:  # a remote monitor is best effort
                    log.debug("could not tell %r about %r: %s", ref, event, exc)


@asynccontextmanager
async def open_actor_system(
    config: SystemConfig | None = None, *, node_id: str | None = None, **options: Any
) -> AsyncIterator[ActorSystem]:
    """Run a node for the duration of the block.

    ``options`` are SystemConfig fields (``cluster=``, ``role=``, ``secret=``, ...),
    applied over ``config``. Leaving the block cancels every actor, listener and link.
    """
    config = attrs.evolve(config or SystemConfig(), **options)
    body_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            system = ActorSystem(nursery, config, node_id or uuid.uuid4().hex)
            await nursery.start(system.root.run)
            try:
                yield system
            except BaseException as exc:
                body_error = exc
                raise
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # An error raised by the code inside the block comes out as itself, not wrapped
        # in the nursery's group (as trio-websocket does for its context managers).
        # Errors of the actors themselves (e.g. an escalation) stay grouped.
        if body_error is not None and _only(group, body_error):
            raise body_error from None
        raise


def _only(group: BaseExceptionGroup, error: BaseException) -> bool:
    """True if ``group`` holds ``error`` and nothing else but Cancelled."""
    found = False
    for exc in group.exceptions:
        if exc is error:
            found = True
        elif isinstance(exc, BaseExceptionGroup):
            if not _only(exc, error):
                return False
            found = True
        elif not isinstance(exc, trio.Cancelled):
            return False
    return found


def transport_for(url: str, link: LinkConfig | None = None) -> Transport:
    """The transport for a URL's scheme: ws/wss or memory.

    Raises:
        ValueError: another scheme.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("ws", "wss"):
        from ._websocket import WebsocketTransport  # trio_websocket only when used

        return WebsocketTransport(link)
    if scheme == "memory":
        return MemoryTransport()
    raise ValueError(
        f"unsupported URL {url!r}: use ws://host:port, wss://host:port or memory://name"
    )
