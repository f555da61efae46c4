"""UDP discovery: nodes broadcast small beacons and listeners keep a table of live peers.

A beacon is a msgpack pair ``[payload, signature]``. ``payload`` is itself msgpack of
``[format_version, cluster, node_id, role, url, protocol_version, timestamp]`` and, when a
cluster secret is set, ``signature`` is an HMAC-SHA256 over exactly those payload bytes (with a
domain prefix), so a verifier never re-encodes anything. Encoding and decoding are pure
functions; :class:`PeerTable` is the pure bookkeeping; the socket code is a thin shell around them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import attrs
import msgpack
import trio

from actors._errors import DiscoveryError

DEFAULT_BROADCAST_ADDRESS = "127.255.255.255"
DEFAULT_DISCOVERY_PORT = 8799
PROTOCOL_VERSION = 1
MAX_DATAGRAM_SIZE = 65535
MAX_BEACON_SIZE = 1024
EVENT_BUFFER_SIZE = 128

_SIGNING_PREFIX = b"actors.discovery.beacon\x00"
_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("cluster", str),
    ("node_id", str),
    ("role", str),
    ("url", str),
    ("protocol_version", int),
    ("timestamp", (int, float)),
)
logger = logging.getLogger("actors.discovery")


@attrs.frozen
class Beacon:
    """One announcement: "node ``node_id`` of ``cluster`` plays ``role`` and listens at ``url``"."""

    cluster: str
    node_id: str
    role: str
    url: str
    protocol_version: int
    timestamp: float


class _Rejected(DiscoveryError):
    """A beacon was refused; ``reason`` is the short key the listener counts it under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"beacon rejected ({reason}): {message}")
        self.reason = reason


def _fields_problem(fields: list[Any]) -> str | None:
    if len(fields) != len(_FIELDS):
        return f"expected {len(_FIELDS)} beacon fields, got {len(fields)}"
    for (name, kind), value in zip(_FIELDS, fields, strict=True):
        if isinstance(value, bool) or not isinstance(value, kind):
            return f"field {name} has wrong type {type(value).__name__}"
    if not fields[1]:
        return "node_id is empty"
    if not math.isfinite(fields[5]):
        return "timestamp is not finite"
    return None


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _SIGNING_PREFIX + payload, hashlib.sha256).digest()


def _unpack(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types on junk; all mean "malformed"
        raise _Rejected("malformed", f"{what} is not msgpack ({type(exc).__name__})") from exc


def encode_beacon(beacon: Beacon, secret: bytes | None = None) -> bytes:
    """Encode ``beacon`` to datagram bytes, signed with HMAC-SHA256 when ``secret`` is given.

    Raises:
        DiscoveryError: a field has the wrong type, or the datagram would be too big.
    """
    fields: list[Any] = [beacon.cluster, beacon.node_id, beacon.role, beacon.url]
    fields += [beacon.protocol_version, beacon.timestamp]
    problem = _fields_problem(fields)
    if problem is not None:
        raise DiscoveryError(f"cannot encode beacon: {problem}")
    try:
        payload = msgpack.packb([PROTOCOL_VERSION, *fields[:5], float(beacon.timestamp)])
    except (OverflowError, TypeError, ValueError) as exc:
        raise DiscoveryError(f"cannot encode beacon: {exc}") from exc
    data: bytes = msgpack.packb([payload, None if secret is None else _sign(secret, payload)])
    if len(data) > MAX_BEACON_SIZE:
        raise DiscoveryError(f"beacon is {len(data)} bytes; the limit is {MAX_BEACON_SIZE}")
    return data


def decode_beacon(
    data: bytes, *, secret: bytes | None = None, now: float | None = None, max_age: float = 30.0
) -> Beacon:
    """Decode and check datagram bytes; raise :class:`DiscoveryError` saying why if unusable.

    With ``secret`` set the beacon must carry a valid signature and a timestamp within
    ``max_age`` seconds of ``now`` (default ``time.time()``) either way. Without a secret,
    signatures are ignored and timestamps are not checked.

    Raises:
        DiscoveryError: the datagram is malformed, unsigned or wrongly signed, or stale
            (the message says which).
    """  # noqa: DOC501 (it raises _Rejected, a private DiscoveryError)
    if len(data) > MAX_BEACON_SIZE:
        raise _Rejected("malformed", f"{len(data)} bytes is over the {MAX_BEACON_SIZE} limit")
    outer = _unpack(data, "datagram")
    if not (
        isinstance(outer, list)
        and len(outer) == 2
        and isinstance(outer[0], bytes)
        and (outer[1] is None or isinstance(outer[1], bytes))
    ):
        raise _Rejected("malformed", "expected [payload: bin, signature: bin | nil]")
    payload, signature = outer
    if secret is not None:
        if signature is None:
            raise _Rejected("unsigned", "beacon is unsigned but a cluster secret is set")
        if not hmac.compare_digest(signature, _sign(secret, payload)):
            raise _Rejected("bad-signature", "signature does not match the cluster secret")
    fields = _unpack(payload, "payload")
    if not isinstance(fields, list) or not fields or type(fields[0]) is not int:
        raise _Rejected("malformed", "payload must be a list starting with the format version")
    if fields[0] != PROTOCOL_VERSION:
        raise _Rejected(
            "version", f"unknown beacon format version {fields[0]} (expected {PROTOCOL_VERSION})"
        )
    problem = _fields_problem(fields[1:])
    if problem is not None:
        raise _Rejected("malformed", problem)
    cluster, node_id, role, url, protocol_version, timestamp = fields[1:]
    beacon = Beacon(cluster, node_id, role, url, protocol_version, float(timestamp))
    if secret is not None:
        age = (time.time() if now is None else now) - beacon.timestamp
        if age > max_age:
            raise _Rejected("stale", f"beacon is {age:.1f}s old (max {max_age}s)")
        if age < -max_age:
            raise _Rejected("future", f"beacon is {-age:.1f}s in the future (max {max_age}s)")
    return beacon


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


@attrs.frozen
class DiscoveryConfig:
    """Where and how discovery beacons are sent and heard; validated on construction."""

    cluster: str = "default"
    port: int = DEFAULT_DISCOVERY_PORT
    broadcast_address: str = DEFAULT_BROADCAST_ADDRESS
    interval: float = 1.0
    expiry: float = 3.5
    secret: bytes | None = None
    bind_address: str = ""
    max_age: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise DiscoveryError(f"discovery port {self.port} is not in 1..65535")
        for address in (self.broadcast_address, self.bind_address or "0.0.0.0"):
            try:
                ipaddress.IPv4Address(address)
            except ValueError as exc:
                raise DiscoveryError(f"{address!r} is not an IPv4 address") from exc
        if not (self.interval > 0 and self.expiry > 0 and self.max_age > 0):
            raise DiscoveryError("interval, expiry and max_age must be positive")


@attrs.frozen
class DiscoveryStatistics:
    """Counters of a listener: datagrams received, beacons accepted, ignored ones by reason."""

    received: int
    accepted: int
    ignored: dict[str, int]
    peers: int
    events_dropped: int = 0


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
        b = beacon
        new = PeerInfo(b.node_id, b.role, b.url, b.cluster, b.protocol_version, address, now)
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
            reason = exc.reason if isinstance(exc, _Rejected) else "malformed"
            self._ignore(reason, address, str(exc))
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


def _is_loopback(address: str) -> bool:
    return ipaddress.IPv4Address(address).is_loopback


def _listen_address(config: DiscoveryConfig) -> str:
    """Where a node that answers queries listens: the loopback broadcast address when
    beacons stay on this host (nothing listens on the network then), else the config's
    bind address (all interfaces by default)."""
    if not config.bind_address and _is_loopback(config.broadcast_address):
        return config.broadcast_address
    return config.bind_address


def _reusable_udp_socket() -> trio.socket.SocketType:
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
    reuse_port = getattr(trio.socket, "SO_REUSEPORT", None)
    if reuse_port is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(trio.socket.SOL_SOCKET, reuse_port, 1)
    return sock


_QUERY_TAG = b"?"


def encode_query(cluster: str, role: str) -> bytes:
    """A query datagram: "who plays ``role`` in ``cluster``?". Nodes that do answer with
    their (signed) beacon, sent to the asker's address. Older listeners drop it as
    malformed (it is not a ``[payload, signature]`` pair)."""
    data: bytes = msgpack.packb([_QUERY_TAG, PROTOCOL_VERSION, cluster, role])
    return data


def decode_query(data: bytes) -> tuple[str, str] | None:
    """``(cluster, role)`` of a query datagram, or None if ``data`` is not a query."""
    if len(data) > MAX_BEACON_SIZE:
        return None
    try:
        fields = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception:  # junk is simply not a query
        return None
    if (
        isinstance(fields, list)
        and len(fields) == 4
        and fields[0] == _QUERY_TAG
        and fields[1] == PROTOCOL_VERSION
        and isinstance(fields[2], str)
        and isinstance(fields[3], str)
    ):
        return fields[2], fields[3]
    return None


async def run_beacon(
    config: DiscoveryConfig,
    *,
    node_id: str,
    role: str,
    url: str,
    protocol_version: int,
    answer_queries: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Broadcast this node's beacon every ``config.interval`` seconds until cancelled.

    With ``answer_queries`` it also listens on the discovery port (the loopback broadcast
    address when beacons stay on this host) and answers each query for its cluster and
    role at once with its beacon, so an asker needs not wait for the next period.
    Reports started once the sockets are ready, then sends the first beacon at once.
    Send errors are logged and retried next period; bad beacon fields raise
    DiscoveryError before start.
    """

    def beacon_bytes() -> bytes:
        beacon = Beacon(config.cluster, node_id, role, url, protocol_version, time.time())
        return encode_beacon(beacon, config.secret)

    beacon_bytes()
    target = (config.broadcast_address, config.port)
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
        async with trio.open_nursery() as nursery:
            if answer_queries:
                await nursery.start(_answer_queries, config, role, beacon_bytes)
            task_status.started()
            failing = False
            deadline = trio.current_time()
            while True:
                try:
                    await sock.sendto(beacon_bytes(), target)
                except OSError as exc:
                    log = logger.debug if failing else logger.warning
                    log("discovery beacon to %s:%d failed, will retry: %s", *target, exc)
                    failing = True
                else:
                    if failing:
                        logger.info("discovery beacon to %s:%d is being sent again", *target)
                    failing = False
                deadline = max(deadline + config.interval, trio.current_time())
                await trio.sleep_until(deadline)


async def _answer_queries(
    config: DiscoveryConfig,
    role: str,
    beacon_bytes: Callable[[], bytes],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    address = _listen_address(config)
    with _reusable_udp_socket() as sock:
        try:
            await sock.bind((address, config.port))
        except OSError as exc:
            logger.warning(
                "cannot listen for discovery queries on %s:%d (%s): askers will wait for "
                "the next beacon instead",
                address or "*",
                config.port,
                exc,
            )
            task_status.started()
            return
        task_status.started()
        # At most `burst` answers per second: a flood of queries costs little.
        burst, tokens, refilled = 200.0, 200.0, trio.current_time()
        while True:
            try:
                data, source = await sock.recvfrom(MAX_DATAGRAM_SIZE)
            except OSError as exc:
                logger.debug("discovery query receive failed: %s", exc)
                await trio.sleep(config.interval)
                continue
            query = decode_query(data)
            if query is None or query != (config.cluster, role):
                continue
            now = trio.current_time()
            tokens = min(burst, tokens + (now - refilled) * burst)
            refilled = now
            if tokens < 1:
                continue
            tokens -= 1
            with contextlib.suppress(OSError):
                await sock.sendto(beacon_bytes(), source)


@attrs.frozen
class Refusal:
    """A node of the asked-for cluster that answered with a beacon we cannot trust."""

    url: str
    address: tuple[str, int]
    reason: str
    """"bad-signature" (another secret) or "unsigned" (it has no secret, we do)."""


class PeerQuery:
    """The answers to "who plays ``role`` in this cluster?" (from ``open_peer_query``).

    Answers to queries and ordinary beacons both count; a peer is keyed by its URL, so
    one that restarted is still one peer.
    """

    def __init__(self, config: DiscoveryConfig, role: str) -> None:
        self._config = config
        self._role = role
        self._found: dict[str, PeerInfo] = {}
        self._refused: dict[str, Refusal] = {}
        self._changed = trio.Event()

    def peers(self) -> list[PeerInfo]:
        """The trusted peers heard so far, by URL order."""
        return [self._found[u] for u in sorted(self._found)]

    def refusals(self) -> list[Refusal]:
        """Peers of the cluster heard with a signature that does not match ours."""
        return [self._refused[u] for u in sorted(self._refused)]

    async def wait_for_peers(self, grace: float = 0.05) -> list[PeerInfo]:
        """Wait for a first peer, then ``grace`` seconds more for others; all of them.

        The caller owns the timeout.
        """
        while not self._found:
            await self._changed.wait()
        await trio.sleep(grace)
        return self.peers()

    def _handle(self, data: bytes, address: tuple[str, int]) -> None:
        config = self._config
        try:
            beacon = decode_beacon(data, secret=config.secret, max_age=config.max_age)
        except DiscoveryError as exc:
            reason = exc.reason if isinstance(exc, _Rejected) else "malformed"
            if reason in ("bad-signature", "unsigned"):
                with contextlib.suppress(DiscoveryError):
                    other = decode_beacon(data)
                    if other.cluster == config.cluster and other.role == self._role:
                        self._refused[other.url] = Refusal(other.url, address, reason)
                        self._wake()
            return
        if beacon.cluster != config.cluster or beacon.role != self._role:
            return
        self._found[beacon.url] = PeerInfo(
            beacon.node_id,
            beacon.role,
            beacon.url,
            beacon.cluster,
            beacon.protocol_version,
            address,
            trio.current_time(),
        )
        self._wake()

    def _wake(self) -> None:
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
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as asker:
        asker.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
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
