"""Links: one connection between two nodes carrying every mailbox dialog between them.

A link starts with a hello each way (node uuid, role, cluster, protocol version, a
nonce); with a cluster secret each side then proves it knows the secret with an HMAC
over both nonces. Only then are messages handled. After that:

- the writer sends every envelope that is ready as one frame (no timer: nothing waits
  when idle, frames grow under load);
- the reader never blocks on a slow mailbox (``put_nowait`` and the mailbox's
  overflow policy), so a busy actor cannot stall heartbeats or other actors;
- heartbeats: when a side has sent nothing for ``heartbeat_interval`` it sends a ping;
  a side that has heard nothing for ``heartbeat_timeout`` declares the peer dead.

A ``Peer`` is the lasting handle on a remote node: it survives reconnects, and
RemoteRefs made from it keep working across them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import random
import secrets
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._codec import Codec, Kind, message
from ._errors import (
    ActorCrashed,
    ActorError,
    ActorGone,
    ActorNotFound,
    AuthenticationError,
    BodyError,
    CodecError,
    ConnectFailed,
    HandshakeError,
    LinkClosed,
    MailboxFull,
    MessageTooLarge,
    PeerDown,
    RemoteError,
    UnknownMessageType,
)
from ._mailbox import YIELD_EVERY, Delivery
from ._ref import Future, RemoteRef, Reply

if TYPE_CHECKING:
    import ssl

    from ._ref import ActorRef
    from ._system import ActorSystem
    from ._transport import Connection, Transport

log = logging.getLogger("actors.link")

PROTOCOL_VERSION = 1

CLOSE_PROTOCOL = 4000
CLOSE_AUTH = 4001
CLOSE_CLUSTER = 4002
CLOSE_SUPERSEDED = 4003
CLOSE_HEARTBEAT = 4008

_AUTH_LABEL = b"actors-link-auth-v1"


@attrs.frozen
class LinkConfig:
    """Timing and size limits of links.

    A dead or frozen peer is noticed within ``heartbeat_timeout + heartbeat_interval``.
    A listener accepts at most ``max_connections`` connections at once, counted from the
    TCP accept (so connections still in their HTTP upgrade or hello count too); more are
    refused with HTTP 503 and a reason. ``handshake_timeout`` bounds the HTTP upgrade
    and, separately, the hello (and proof) exchange.
    """

    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    handshake_timeout: float = 5.0
    connect_timeout: float = 5.0
    disconnect_timeout: float = 1.0
    max_frame_size: int = 16 * 1024 * 1024
    outbox_limit: int = 10_000
    max_connections: int = 1024
    reconnect_initial: float = 0.05
    reconnect_max: float = 5.0


# -- control messages ----------------------------------------------------------------


@message("actors.Hello")
@attrs.frozen
class Hello:
    """First message each way on a link."""

    node_id: str
    role: str
    cluster: str
    version: int
    nonce: bytes
    auth: bool
    max_frame: int = 0
    """The largest frame this node accepts (0: not said); the peer sends no larger."""


@message("actors.Proof")
@attrs.frozen
class Proof:
    """HMAC over both nonces and the sender's node id, proving the cluster secret."""

    mac: bytes


@message("actors.Ping")
@attrs.frozen
class Ping:
    """Sent when a side has been silent for a heartbeat interval."""


@message("actors.Notice")
@attrs.frozen
class Notice:
    """A link-level error report: a frame or message of the receiver's was refused."""

    text: str


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


_KNOWN_ERRORS: dict[str, type[ActorError]] = {
    cls.__name__: cls
    for cls in (
        ActorNotFound,
        ActorGone,
        ActorCrashed,
        MailboxFull,
        BodyError,
        UnknownMessageType,
        CodecError,
        MessageTooLarge,
    )
}


def _error_from(body: Any) -> BaseException:
    if isinstance(body, list) and len(body) == 2 and all(isinstance(x, str) for x in body):
        type_name, text = body
        known = _KNOWN_ERRORS.get(type_name)
        if known is not None:
            return known(text)
        return RemoteError(type_name, text)
    return RemoteError("ProtocolError", f"malformed error reply: {body!r:.100}")


def _proof(secret: bytes, verifier_nonce: bytes, prover_nonce: bytes, prover_id: str) -> bytes:
    return hmac.new(
        secret, _AUTH_LABEL + verifier_nonce + prover_nonce + prover_id.encode(), hashlib.sha256
    ).digest()


# -- the handshake ---------------------------------------------------------------------


async def _receive_control(codec: Codec, connection: Connection, expected: type) -> Any:
    frame = await connection.receive()
    try:
        envelopes = codec.decode_frame(frame)  # type: ignore[arg-type]
        if len(envelopes) != 1 or envelopes[0][0] != Kind.CONTROL:
            raise CodecError(f"expected one {expected.__name__} control message first")
        msg = codec.structure(envelopes[0][4], envelopes[0][5])
        if not isinstance(msg, expected):
            raise CodecError(f"expected {expected.__name__}, got {type(msg).__name__}")
    except CodecError as exc:
        if expected is Proof:
            # Anything but the proof (a message sent early, garbage) fails authentication:
            # the peer is closed with 4001 and nothing it sent is handled.
            raise AuthenticationError(f"authentication failed: {exc}") from None
        raise HandshakeError(f"bad handshake: {exc}", CLOSE_PROTOCOL) from None
    return msg


async def handshake(system: ActorSystem, connection: Connection) -> Hello:
    """Exchange hellos (and proofs, with a secret); return the peer's hello.

    On failure the connection is closed with a 4000-range code and a readable reason,
    and HandshakeError (AuthenticationError for 4001) is raised. A close received from
    the peer during the handshake is turned into the same errors, so both sides learn
    why.
    """
    codec = system.codec
    secret = system.config.secret
    nonce = secrets.token_bytes(16)
    mine = Hello(
        node_id=system.node_id,
        role=system.role,
        cluster=system.cluster,
        version=PROTOCOL_VERSION,
        nonce=nonce,
        auth=secret is not None,
        max_frame=system.config.link.max_frame_size,
    )
    try:
        with trio.fail_after(system.config.link.handshake_timeout):
            await connection.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, mine)]))
            theirs: Hello = await _receive_control(codec, connection, Hello)
            if theirs.version != PROTOCOL_VERSION:
                raise HandshakeError(
                    f"protocol version mismatch: this node speaks {PROTOCOL_VERSION}, "
                    f"the peer {theirs.version}; run the same version on both sides",
                    CLOSE_PROTOCOL,
                )
            if theirs.cluster != system.cluster:
                raise HandshakeError(
                    f"cluster mismatch: this node is in {system.cluster!r}, the peer in "
                    f"{theirs.cluster!r}; pass the same cluster name to both",
                    CLOSE_CLUSTER,
                )
            if theirs.node_id == system.node_id:
                raise HandshakeError("a node cannot link to itself", CLOSE_PROTOCOL)
            if secret is None and theirs.auth:
                raise AuthenticationError(
                    "the peer requires the cluster secret: start this node with it"
                )
            if secret is not None:
                if not theirs.auth:
                    raise AuthenticationError(
                        "the peer has no cluster secret: start it with the cluster's secret"
                    )
                mac = _proof(secret, theirs.nonce, nonce, system.node_id)
                await connection.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, Proof(mac))]))
                proof: Proof = await _receive_control(codec, connection, Proof)
                expected = _proof(secret, nonce, theirs.nonce, theirs.node_id)
                if not hmac.compare_digest(proof.mac, expected):
                    raise AuthenticationError(
                        "authentication failed: the peer does not know the cluster secret"
                    )
            return theirs
    except trio.TooSlowError:
        await connection.close(CLOSE_PROTOCOL, "handshake timed out")
        raise HandshakeError("handshake timed out", CLOSE_PROTOCOL) from None
    except HandshakeError as exc:
        await connection.close(exc.code, str(exc))
        raise
    except LinkClosed as exc:
        if exc.code == CLOSE_AUTH:
            raise AuthenticationError(f"refused by the peer: {exc.reason}") from None
        if 4000 <= exc.code < 5000:
            raise HandshakeError(f"refused by the peer: {exc.reason}", exc.code) from None
        raise


# -- a running link --------------------------------------------------------------------


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

    def __init__(self, system: ActorSystem, connection: Connection, peer: Peer, hello: Hello):
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
        self._senders: dict[str, RemoteRef] = {}

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
                future.fail(_error_from(body))
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

    def _sender_ref(self, name: str) -> RemoteRef:
        ref = self._senders.get(name)
        if ref is None:
            ref = self._senders[name] = RemoteRef(self.peer, name)
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


async def serve_link(system: ActorSystem, connection: Connection, *, initiator: bool) -> None:
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

    def __init__(self, system: ActorSystem, node_id: str, url: str | None) -> None:
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
        system: ActorSystem,
        transport: Transport,
        url: str,
        reconnect: bool,
        ssl_context: ssl.SSLContext | None,
        *,
        task_status: trio.TaskStatus[Peer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Connect to ``url`` and keep the link up (with backoff) while ``reconnect``."""
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
