"""Tests of the pure core of a discovery query (``QueryAnswers``): no trio, no sockets.

A query gathers the beacons that answer "who plays ``role`` in this cluster?": trusted
ones become peers (keyed by URL), ones signed with another secret (or unsigned when we
have one) become refusals, anything else changes nothing.
"""

from __future__ import annotations

import pytest

from actors._discovery_beacon import (
    Beacon,
    DiscoveryConfig,
    decode_beacon,
    encode_beacon,
    rejection_reason,
)
from actors._discovery_peers import QueryAnswers, Refusal
from actors._errors import DiscoveryError

SECRET = b"our-secret"
NOW = 1_700_000_000.0
ADDRESS = ("127.0.0.1", 40000)


def datagram(
    node_id: str = "n1",
    *,
    url: str = "ws://127.0.0.1:8765",
    role: str = "control-plane",
    cluster: str = "c",
    secret: bytes | None = SECRET,
    timestamp: float = NOW,
) -> bytes:
    """The bytes of a beacon with these fields, signed with ``secret`` (if any)."""
    return encode_beacon(Beacon(cluster, node_id, role, url, 1, timestamp), secret)


def answers(secret: bytes | None = SECRET) -> QueryAnswers:
    """A query of cluster "c" for the "control-plane" role."""
    return QueryAnswers(DiscoveryConfig(cluster="c", secret=secret), "control-plane")


def test_a_trusted_answer_becomes_a_peer_keyed_by_url() -> None:
    """Two answers from one URL (a node that restarted with a new id) are one peer, the
    latest; another URL is a second peer; peers come back in URL order."""
    book = answers()
    assert book.observe(datagram("old", url="ws://b:1"), ADDRESS, 1.0, wall_time=NOW)
    assert book.observe(datagram("new", url="ws://b:1"), ADDRESS, 2.0, wall_time=NOW)
    assert book.observe(datagram("other", url="ws://a:1"), ("127.0.0.2", 1), 3.0, wall_time=NOW)
    peers = book.peers()
    assert [(p.url, p.node_id, p.last_seen) for p in peers] == [
        ("ws://a:1", "other", 3.0),
        ("ws://b:1", "new", 2.0),
    ]
    assert peers[0].address == ("127.0.0.2", 1)
    assert book.refusals() == []


@pytest.mark.parametrize(
    "data",
    [
        datagram(cluster="elsewhere"),
        datagram(role="worker"),
        b"\xc1 not msgpack",
        datagram(timestamp=NOW - 3600),  # stale: neither a peer nor a refusal
    ],
    ids=["other-cluster", "other-role", "junk", "stale"],
)
def test_datagrams_that_are_no_answer_change_nothing(data: bytes) -> None:
    """Another cluster or role, junk, or a stale signed beacon: observe says False and
    neither the peers nor the refusals change."""
    book = answers()
    assert not book.observe(data, ADDRESS, 1.0, wall_time=NOW)
    assert book.peers() == [] and book.refusals() == []


def test_an_answer_signed_with_another_secret_is_a_refusal() -> None:
    """A node of our cluster and role signing with another secret is refused (reason
    "bad-signature"), not trusted; the same from another role is simply ignored."""
    book = answers()
    assert book.observe(datagram(secret=b"theirs"), ADDRESS, 1.0, wall_time=NOW)
    assert not book.observe(datagram(role="worker", secret=b"theirs"), ADDRESS, 1.0)
    assert book.refusals() == [Refusal("ws://127.0.0.1:8765", ADDRESS, "bad-signature")]
    assert book.peers() == []


def test_an_unsigned_answer_is_refused_only_when_we_have_a_secret() -> None:
    """Without a secret of our own an unsigned answer is a peer; with one it is a
    refusal with reason "unsigned"."""
    strict, open_ = answers(SECRET), answers(None)
    data = datagram(secret=None)
    assert strict.observe(data, ADDRESS, 1.0, wall_time=NOW)
    assert open_.observe(data, ADDRESS, 1.0, wall_time=NOW)
    assert [r.reason for r in strict.refusals()] == ["unsigned"] and strict.peers() == []
    assert [p.node_id for p in open_.peers()] == ["n1"] and open_.refusals() == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (datagram(secret=None), "unsigned"),
        (datagram(secret=b"theirs"), "bad-signature"),
        (datagram(timestamp=NOW - 3600), "stale"),
        (b"junk", "malformed"),
    ],
)
def test_rejection_reason_names_why_a_beacon_was_refused(data: bytes, reason: str) -> None:
    """The short reason a listener counts a refused beacon under comes from the error."""
    with pytest.raises(DiscoveryError) as caught:
        decode_beacon(data, secret=SECRET, now=NOW)
    assert rejection_reason(caught.value) == reason


def test_a_plain_discovery_error_counts_as_malformed() -> None:
    """An error that carries no reason of its own is counted as "malformed"."""
    assert rejection_reason(DiscoveryError("anything")) == "malformed"
