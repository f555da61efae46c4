"""Peers: the lasting handle on a remote node, and the refs that reach through it.

A ``Peer`` survives reconnects: it owns the current ``Link`` (``_link``), tells peer
monitors ``LinkUp``/``LinkDown``, and, for a node this one connected to, keeps the link
up with backoff (``Peer.maintain``). ``RemoteRef``s made from a Peer keep working across
reconnects. ``serve_link`` handles the accepting side of a new connection.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._codec import Kind
from ._errors import ConnectFailed, HandshakeError, LinkClosed, PeerDown
from ._handshake import handshake
from ._link import Link
from ._link_protocol import CLOSE_SUPERSEDED, Hello
from ._node import Node
from ._ref_base import ActorRef, Future

if TYPE_CHECKING:
    import ssl

    from ._transport import Connection, Transport

log = logging.getLogger("actors.link")


@attrs.frozen
class LinkUp:
    """Told to peer monitors when a link to a node is up (after its hello)."""

    node_id: str
    role: str
    url: str | None


@attrs.frozen
class LinkDown:
    """Told to peer monitors when a link to a node is gone (closed or heartbeats missed)."""

    node_id: str
    reason: str


class PeerHost(Node, Protocol):
    """What a Peer needs of its node beyond :class:`Node`: the node's table of peers.

    ``ActorSystem`` (a layer above) satisfies it.
    """

    _peers: dict[str, Peer]

    def _peer_for(self, node_id: str, url: str | None) -> Peer:
        """The Peer for ``node_id``, made (and recorded) if the node has none yet."""
        ...

    def _notify_peer(self, event: LinkUp | LinkDown) -> None:
        """Tell the peer monitors that a link went up or down."""
        ...


class RemoteRef(ActorRef):
    """A reference to an actor on another node, reached through that node's Peer (link).

    The same ref works across reconnects of the link.
    """

    __slots__ = ("_hash", "name", "peer")

    def __init__(self, peer: Peer, name: str) -> None:
        self.peer = peer
        self.name = name
        self._hash = hash((name, id(peer)))

    @property
    def node_id(self) -> str:
        """The uuid of the remote node."""
        return self.peer.node_id

    async def tell(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Send over the link (waiting if its outbox is full); dead letter if the peer is down."""
        await self.peer.send_tell(self.name, message, sender)

    def tell_nowait(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Send over the link now; MailboxFull if its outbox is full, dead letter if down."""
        self.peer.send_tell_nowait(self.name, message, sender)

    async def ask(self, message: Any, *, sender: ActorRef | None = None) -> Any:
        """Send and wait for the answer; PeerDown at once if the link is down."""
        return await self.peer.send_ask(self.name, message, sender)

    def __repr__(self) -> str:
        return f"<RemoteRef {self.name!r} on {self.peer.node_id[:8]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRef) and (other.peer, other.name) == (self.peer, self.name)

    def __hash__(self) -> int:
        return self._hash


async def serve_link(system: PeerHost, connection: Connection, *, initiator: bool) -> None:
    """Handshake an accepted connection and run its link until it closes."""
    try:
        hello = await handshake(system, connection)
    except HandshakeError as exc:
        log.warning("refused a link from %s: %s", connection.remote, exc)
        return
    except LinkClosed:
        return
    peer = system._peer_for(hello.node_id, None)
    await peer._run(connection, hello)


class Peer:
    """The lasting handle on a remote node; ``ref(name)`` makes RemoteRefs through it."""

    def __init__(self, system: PeerHost, node_id: str, url: str | None) -> None:
        self.system = system
        self.node_id = node_id
        self.url = url
        self.role: str | None = None
        self._link: Link | None = None
        self._up = trio.Event()
        self.links_opened = 0
        self.last_down_reason: str | None = None

    @property
    def connected(self) -> bool:
        """True while a link is up."""
        return self._link is not None

    @property
    def link(self) -> Link | None:
        """The current link, if any (for statistics)."""
        return self._link

    def ref(self, name: str) -> RemoteRef:
        """A reference to the actor ``name`` on this peer."""
        return RemoteRef(self, name)

    async def wait_disconnected(self) -> None:
        """Wait until the current link (if any) is down (the caller owns the timeout)."""
        link = self._link
        if link is None:
            await trio.lowlevel.checkpoint()
            return
        await link.done.wait()

    async def wait_connected(self) -> None:
        """Wait until a link is up (the caller owns the timeout)."""
        while self._link is None:
            await self._up.wait()
        await trio.lowlevel.checkpoint()

    # -- used by RemoteRef -------------------------------------------------------------
    def _require_link(self) -> Link:
        link = self._link
        if link is None:
            raise PeerDown(
                f"node {self.node_id[:8]} is not connected"
                + (f" ({self.last_down_reason})" if self.last_down_reason else "")
            )
        return link

    async def send_tell(self, name: str, msg: Any, sender: ActorRef | None) -> None:
        """Send a tell; dead letter if the peer is down."""
        link = self._link
        if link is None:
            await trio.lowlevel.checkpoint()
            self.system.dead_letters.add(name, msg, f"node {self.node_id[:8]} is not connected")
            return
        sender_name = sender.name if sender is not None else None
        await link.send(self.system.codec.pack_envelope(Kind.TELL, name, sender_name, 0, msg))

    def send_tell_nowait(self, name: str, msg: Any, sender: ActorRef | None) -> None:
        """Send a tell now; MailboxFull when the outbox is full, dead letter if down."""
        link = self._link
        if link is None:
            self.system.dead_letters.add(name, msg, f"node {self.node_id[:8]} is not connected")
            return
        sender_name = sender.name if sender is not None else None
        link.enqueue(self.system.codec.pack_envelope(Kind.TELL, name, sender_name, 0, msg))

    async def send_ask(self, name: str, msg: Any, sender: ActorRef | None) -> Any:
        """Send an ask and wait for its answer; PeerDown at once if the peer is down."""
        link = self._require_link()
        corr = link.next_corr()
        sender_name = sender.name if sender is not None else None
        packed = self.system.codec.pack_envelope(Kind.ASK, name, sender_name, corr, msg)
        future = Future()
        link.pending[corr] = future
        try:
            await link.send(packed)
            return await future.wait()
        finally:
            link.pending.pop(corr, None)

    # -- lifetime ----------------------------------------------------------------------
    async def _run(self, connection: Connection, hello: Hello, on_up: Any = None) -> LinkClosed:
        link = Link(self.system, connection, self, hello)
        old = self._link
        if old is not None:
            old._finish(LinkClosed(CLOSE_SUPERSEDED, "superseded by a newer link"))
            self.system.nursery.start_soon(
                old.connection.close, CLOSE_SUPERSEDED, "superseded by a newer link"
            )
        if hello.node_id != self.node_id:
            self.system._peers.pop(self.node_id, None)
            self.node_id = hello.node_id
        self.system._peers[self.node_id] = self
        self.role = hello.role
        self._link = link
        self.links_opened += 1
        self._up.set()
        self.system._notify_peer(LinkUp(self.node_id, hello.role, self.url))
        if on_up is not None:
            on_up(self)
        try:
            reason = await link.run()
        finally:
            if self._link is link:
                self._link = None
                self._up = trio.Event()
                why = link.closed.reason if link.closed else "cancelled"
                self.last_down_reason = why
                if self.url is None and self.system._peers.get(self.node_id) is self:
                    # An accepted peer is the other side's to re-establish; when it
                    # reconnects it gets a new Peer. Forgetting it keeps a long-running
                    # server from collecting one dead Peer per short-lived client.
                    del self.system._peers[self.node_id]
                self.system._notify_peer(LinkDown(self.node_id, why))
        return reason

    @staticmethod
    async def maintain(
        system: PeerHost,
        transport: Transport,
        url: str,
        reconnect: bool,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect to ``url`` and keep the link up (with backoff) while ``reconnect``.

        Raises:
            HandshakeError: the first handshake fails (later ones are logged and retried).
            ConnectFailed: the first connection fails and ``reconnect`` is off.
        """
        config = system.config.link
        backoff = config.reconnect_initial
        peer: Peer | None = None
        while True:
            try:
                async with transport.connect(url, ssl_context) as connection:
                    hello = await handshake(system, connection)
                    if peer is None:
                        peer = Peer(system, hello.node_id, url)
                        on_up: Any = task_status.started
                    else:
                        on_up = None
                    backoff = config.reconnect_initial
                    await peer._run(connection, hello, on_up)
            except HandshakeError as exc:
                if peer is None:
                    raise
                log.error("reconnecting to %s: %s", url, exc)
            except (ConnectFailed, LinkClosed, OSError) as exc:
                if peer is None and not reconnect:
                    raise ConnectFailed(f"cannot connect to {url}: {exc}") from exc
                log.debug("link to %s down: %s", url, exc)
            if peer is not None and not reconnect:
                return
            delay = backoff * (0.5 + random.random())
            backoff = min(backoff * 2, config.reconnect_max)
            await trio.sleep(delay)
