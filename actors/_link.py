"""Links: one connection between two nodes carrying every mailbox dialog between them.

A link runs once the handshake (``_handshake``) is done. Then:

- the writer sends every envelope that is ready as one frame (no timer: nothing waits
  when idle, frames grow under load);
- the reader never blocks on a slow mailbox (``put_nowait`` and the mailbox's
  overflow policy), so a busy actor cannot stall heartbeats or other actors;
- heartbeats: when a side has sent nothing for ``heartbeat_interval`` it sends a ping;
  a side that has heard nothing for ``heartbeat_timeout`` declares the peer dead.

A link belongs to a ``Peer`` (``_peer``), the lasting handle on the remote node that
survives reconnects. The protocol's constants and control messages are in
``_link_protocol``; they (and ``handshake``) are re-exported here for importers of the
old single-module layout.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Protocol

import trio

from ._codec import Codec, Kind
from ._errors import (
    ActorError,
    ActorNotFound,
    CodecError,
    LinkClosed,
    MailboxFull,
    MessageTooLarge,
    PeerDown,
)
from ._handshake import handshake
from ._link_protocol import (
    CLOSE_AUTH,
    CLOSE_CLUSTER,
    CLOSE_HEARTBEAT,
    CLOSE_PROTOCOL,
    CLOSE_SUPERSEDED,
    PROTOCOL_VERSION,
    Hello,
    LinkConfig,
    Notice,
    Ping,
    Proof,
    error_from,
)
from ._mailbox import YIELD_EVERY, Delivery
from ._ref_base import ActorRef, Future, Reply

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Connection

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_CLUSTER",
    "CLOSE_HEARTBEAT",
    "CLOSE_PROTOCOL",
    "CLOSE_SUPERSEDED",
    "PROTOCOL_VERSION",
    "Hello",
    "Link",
    "LinkConfig",
    "LinkOwner",
    "Notice",
    "Ping",
    "Proof",
    "handshake",
]

log = logging.getLogger("actors.link")


class LinkOwner(Protocol):
    """What a link needs of the Peer that owns it (the Peer lives a layer above)."""

    node_id: str

    def ref(self, name: str) -> ActorRef:
        """A reference to the actor ``name`` on the owner's node."""
        ...


class _RemoteReply(Reply):
    __slots__ = ("_corr", "_done", "_link")

    def __init__(self, link: Link, corr: int) -> None:
        self._link = link
        self._corr = corr
        self._done = False

    def resolve(self, value: Any) -> None:
        if self._done:
            return
        self._done = True
        link = self._link
        try:
            # Unbounded: a dropped reply would leave its asker waiting forever.
            link.enqueue(
                link.codec.pack_envelope(Kind.REPLY, "", None, self._corr, value), bounded=False
            )
        except CodecError as exc:
            self._send_error(type(exc).__name__, f"the reply could not be encoded: {exc}")
        except (PeerDown, MailboxFull) as exc:
            log.debug("reply %d not sent: %s", self._corr, exc)

    def fail(self, error: BaseException) -> None:
        if self._done:
            return
        self._done = True
        self._send_error(type(error).__name__, str(error))

    def _send_error(self, type_name: str, text: str) -> None:
        self._link.send_error(self._corr, type_name, text)


class Link:
    """A connection after a successful handshake: reader, writer and heartbeat."""

    def __init__(self, system: Node, connection: Connection, peer: LinkOwner, hello: Hello):
        self.system = system
        self.codec = system.codec
        self.config = system.config.link
        self.connection = connection
        self.peer = peer
        self.hello = hello
        # Frames go out no larger than either side accepts: a peer with a smaller limit
        # would close the link on an oversized frame (and a reconnect would resend it).
        own = self.config.max_frame_size
        self.max_frame = min(own, hello.max_frame) if hello.max_frame > 0 else own
        self.pending: dict[int, Future] = {}
        self._next_corr = 1
        self._sends = 0
        self._outbox: list[bytes] = []
        self._writer_wake = trio.lowlevel.ParkingLot()
        self._space = trio.lowlevel.ParkingLot()
        self.closed: LinkClosed | None = None
        self.done = trio.Event()
        now = trio.current_time()
        self.last_received = now
        self.last_sent = now
        self.frames_sent = 0
        self.frames_received = 0
        self.envelopes_sent = 0
        self.envelopes_received = 0
        self._senders: dict[str, ActorRef] = {}

    # -- sending ---------------------------------------------------------------------
    def next_corr(self) -> int:
        """A fresh correlation id for an ask on this link."""
        corr = self._next_corr
        self._next_corr = corr + 1
        return corr

    def enqueue(self, packed: bytes, *, bounded: bool = True) -> None:
        """Queue one packed envelope for the writer; MailboxFull when the outbox is full.

        MessageTooLarge for an envelope over the frame limit (the smaller of this node's
        and the peer's): that send fails, the link carries on. ``bounded=False`` (for
        replies, bounded by the asks that wait for them) ignores the outbox limit.

        Raises:
            PeerDown: the link is closed.
            MessageTooLarge: the envelope exceeds the link's frame limit.
            MailboxFull: the outbox is full (only when ``bounded``).
        """
        if self.closed is not None:
            raise PeerDown(f"link to {self.peer.node_id[:8]} is closed: {self.closed}")
        if len(packed) > self.max_frame - 16:
            raise MessageTooLarge(
                f"message of {len(packed)} bytes exceeds the link's max frame size "
                f"({self.max_frame} bytes): send a reference (a path, a key) "
                "instead of the data"
            )
        if bounded and len(self._outbox) >= self.config.outbox_limit:
            raise MailboxFull(
                f"outbox of the link to {self.peer.node_id[:8]} is full "
                f"({self.config.outbox_limit} messages)"
            )
        self._outbox.append(packed)
        if len(self._outbox) == 1:
            self._writer_wake.unpark()

    async def send(self, packed: bytes) -> None:
        """Queue one packed envelope, waiting while the outbox is full.

        Like ``Mailbox.put``: always a cancellation point, a scheduling point when it
        waits and at least every ``YIELD_EVERY`` calls (so a sending loop fills frames).
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if len(self._outbox) >= self.config.outbox_limit and self.closed is None:
            while len(self._outbox) >= self.config.outbox_limit and self.closed is None:
                await self._space.park()
            self.enqueue(packed)
            return
        self.enqueue(packed)
        self._sends += 1
        if self._sends >= YIELD_EVERY:
            self._sends = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    def send_control(self, msg: Any) -> None:
        """Queue a control message (ping, notice)."""
        try:
            self.enqueue(self.codec.pack_envelope(Kind.CONTROL, "", None, 0, msg))
        except (PeerDown, MailboxFull) as exc:
            log.debug("control message %r not sent: %s", msg, exc)

    def send_error(self, corr: int, type_name: str, text: str) -> None:
        """Answer an ask with an error (type name and text)."""
        try:
            self.enqueue(
                self.codec.pack_envelope(Kind.FAIL, "", None, corr, [type_name, text]),
                bounded=False,
            )
        except (PeerDown, MailboxFull) as exc:
            log.debug("error reply %d not sent: %s", corr, exc)

    @property
    def outbox_size(self) -> int:
        """Envelopes queued for the writer and not yet taken (0: all handed to the socket)."""
        return len(self._outbox)

    async def wait_outbox_taken(self) -> None:
        """Wait until the writer has taken everything queued so far (caller owns the timeout)."""
        while self._outbox and self.closed is None:
            await self._space.park()

    async def _writer(self) -> None:
        max_frame = self.max_frame
        while True:
            while not self._outbox:
                await self._writer_wake.park()
            ready, self._outbox = self._outbox, []
            if self._space:
                self._space.unpark_all()
            # Split only when the ready envelopes would not fit one frame.
            start, size = 0, 0
            for index, packed in enumerate(ready):
                if size + len(packed) > max_frame - 16 and index > start:
                    await self._send_frame(ready[start:index])
                    start, size = index, 0
                size += len(packed)
            await self._send_frame(ready[start:])

    async def _send_frame(self, envelopes: list[bytes]) -> None:
        await self.connection.send(Codec.join_frame(envelopes))
        self.last_sent = trio.current_time()
        self.frames_sent += 1
        self.envelopes_sent += len(envelopes)

    async def _heartbeat(self) -> None:
        interval = self.config.heartbeat_interval
        timeout = self.config.heartbeat_timeout
        while True:
            await trio.sleep(interval / 2)
            now = trio.current_time()
            if now - self.last_received > timeout:
                raise LinkClosed(
                    CLOSE_HEARTBEAT,
                    f"no frame from the peer for {now - self.last_received:.1f}s "
                    f"(heartbeat timeout {timeout}s)",
                )
            if now - self.last_sent >= interval and not self._outbox:
                self.send_control(Ping())

    # -- receiving -------------------------------------------------------------------
    async def _reader(self) -> None:
        codec = self.codec
        while True:
            frame = await self.connection.receive()
            self.last_received = trio.current_time()
            self.frames_received += 1
            try:
                envelopes = codec.decode_frame(frame)  # type: ignore[arg-type]
            except CodecError as exc:
                log.warning("link %s: frame refused: %s", self.peer.node_id[:8], exc)
                self.send_control(Notice(f"frame refused: {exc}"))
                continue
            self.envelopes_received += len(envelopes)
            for envelope in envelopes:
                self._dispatch(envelope)

    def _dispatch(self, envelope: list[Any]) -> None:
        kind, to, sender, corr, type_name, body = envelope
        if kind == Kind.TELL or kind == Kind.ASK:
            self._deliver(kind, to, sender, corr, type_name, body)
        elif kind == Kind.REPLY:
            future = self.pending.pop(corr, None)
            if future is not None:
                try:
                    future.resolve(self.codec.structure(type_name, body))
                except CodecError as exc:
                    future.fail(exc)
        elif kind == Kind.FAIL:
            future = self.pending.pop(corr, None)
            if future is not None:
                future.fail(error_from(body))
        elif kind == Kind.CONTROL:
            try:
                msg = self.codec.structure(type_name, body)
            except CodecError as exc:
                self.send_control(Notice(f"control message refused: {exc}"))
                return
            if isinstance(msg, Notice):
                log.warning(
                    "peer %s refused something we sent: %s", self.peer.node_id[:8], msg.text
                )
        else:
            self.send_control(Notice(f"unknown envelope kind {kind!r}: message to {to!r} dropped"))

    def _deliver(
        self, kind: int, to: str, sender: str | None, corr: int, type_name: str, body: Any
    ) -> None:
        is_ask = kind == Kind.ASK
        ref = self.system.lookup(to)
        try:
            if ref is None:
                raise ActorNotFound(f"no actor named {to!r} on node {self.system.node_id[:8]}")
            msg = self.codec.structure(type_name, body)
            delivery = Delivery(
                msg,
                self._sender_ref(sender) if sender else None,
                _RemoteReply(self, corr) if is_ask else None,
            )
            ref.mailbox.put_nowait(delivery)
        except ActorError as exc:
            if is_ask:
                self.send_error(corr, type(exc).__name__, str(exc))
            else:
                self.system.dead_letters.add(to, body, str(exc))
                self.send_control(Notice(f"message {type_name!r} to {to!r} refused: {exc}"))

    def _sender_ref(self, name: str) -> ActorRef:
        ref = self._senders.get(name)
        if ref is None:
            ref = self._senders[name] = self.peer.ref(name)
        return ref

    # -- lifetime --------------------------------------------------------------------
    async def run(self) -> LinkClosed:
        """Serve until the connection closes; return why (and close it)."""
        reason = LinkClosed(1006, "connection lost")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                nursery.start_soon(self._heartbeat)
                await self._reader()
        except* LinkClosed as group:
            reason = group.exceptions[0]  # type: ignore[assignment]
        finally:
            self._finish(reason)
            # When the node is shutting down (we are cancelled), the reader that would
            # see the peer's close reply is cancelled too: do not wait for it.
            shutting_down = trio.current_effective_deadline() == -math.inf
            # A peer declared dead by missed heartbeats will not answer the close
            # handshake either: waiting for its reply would only delay LinkDown (and
            # with it redelivery, or the reconnect) by disconnect_timeout.
            peer_dead = reason.code == CLOSE_HEARTBEAT
            with trio.CancelScope(shield=True):
                await self.connection.close(
                    reason.code if reason.code >= 4000 else 1000,
                    reason.reason,
                    wait=not (shutting_down or peer_dead),
                )
        return reason

    def _finish(self, reason: LinkClosed) -> None:
        if self.closed is not None:
            return
        self.closed = reason
        down = PeerDown(f"link to node {self.peer.node_id[:8]} went down: {reason.reason}")
        for future in self.pending.values():
            future.fail(down)
        self.pending.clear()
        self._outbox.clear()
        self._space.unpark_all()
        self.done.set()
