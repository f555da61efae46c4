"""The discovery wire format: beacons, queries and their settings; pure, no trio.

A beacon is a msgpack pair ``[payload, signature]``. ``payload`` is itself msgpack of
``[format_version, cluster, node_id, role, url, protocol_version, timestamp]`` and, when a
cluster secret is set, ``signature`` is an HMAC-SHA256 over exactly those payload bytes (with a
domain prefix), so a verifier never re-encodes anything. A query is a msgpack list
``["?", format_version, cluster, role]``: "who plays ``role`` in ``cluster``?".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from typing import Any

import attrs
import msgpack

from actors._errors import DiscoveryError

DEFAULT_BROADCAST_ADDRESS = "127.255.255.255"
DEFAULT_DISCOVERY_PORT = 8799
PROTOCOL_VERSION = 1
MAX_DATAGRAM_SIZE = 65535
MAX_BEACON_SIZE = 1024

_SIGNING_PREFIX = b"actors.discovery.beacon\x00"
_QUERY_TAG = b"?"
_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("cluster", str),
    ("node_id", str),
    ("role", str),
    ("url", str),
    ("protocol_version", int),
    ("timestamp", (int, float)),
)


@attrs.frozen
class Beacon:
    """One announcement: "node ``node_id`` of ``cluster`` plays ``role`` and listens at ``url``"."""

    cluster: str
    node_id: str
    role: str
    url: str
    protocol_version: int
    timestamp: float


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


class _Rejected(DiscoveryError):
    """A beacon was refused; ``reason`` is the short key the listener counts it under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"beacon rejected ({reason}): {message}")
        self.reason = reason


def rejection_reason(error: DiscoveryError) -> str:
    """The short key a refused beacon is counted under ("stale", "bad-signature", ...)."""
    return error.reason if isinstance(error, _Rejected) else "malformed"


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
