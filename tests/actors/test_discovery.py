"""Tests of UDP discovery: the beacon codec, the peer table, and listeners on loopback.

Every socket test broadcasts to 127.255.255.255 (loopback only) on a fresh free port.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from support import free_udp_port

from actors._discovery import (
    DEFAULT_BROADCAST_ADDRESS,
    PROTOCOL_VERSION,
    Beacon,
    DiscoveryConfig,
    PeerAppeared,
    PeerDisappeared,
    PeerTable,
    decode_beacon,
    encode_beacon,
    open_discovery_listener,
    run_beacon,
)
from actors._errors import DiscoveryError

SECRET = b"cluster-secret"
TIMEOUT = 5.0
NOW = 1_700_000_000.0


def make_beacon(node_id: str = "n1", *, cluster: str = "default", **changes: object) -> Beacon:
    """Return a valid beacon stamped with the current wall clock, with ``changes`` applied."""
    fields: dict[str, object] = {
        "cluster": cluster,
        "node_id": node_id,
        "role": "worker",
        "url": "ws://127.0.0.1:8765",
        "protocol_version": 3,
        "timestamp": time.time(),
    }
    fields.update(changes)
    return Beacon(**fields)  # type: ignore[arg-type]


async def send_raw(port: int, *datagrams: bytes, address: str = DEFAULT_BROADCAST_ADDRESS) -> None:
    """Send each datagram, in order, from a plain UDP socket to ``address:port``."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
        for data in datagrams:
            await sock.sendto(data, (address, port))


@asynccontextmanager
async def beacon_running(
    config: DiscoveryConfig, node_id: str, role: str = "worker"
) -> AsyncIterator[None]:
    """Run a beacon sender for ``node_id`` while the block runs."""
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: run_beacon(
                config,
                node_id=node_id,
                role=role,
                url=f"ws://127.0.0.1:9/{node_id}",
                protocol_version=7,
                task_status=task_status,
            )
        )
        yield
        nursery.cancel_scope.cancel()


# --- codec -------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, SECRET])
def test_round_trip(secret: bytes | None) -> None:
    """A beacon decodes to an equal beacon, signed or not, and stays well under one MTU."""
    beacon = make_beacon(timestamp=NOW)
    data = encode_beacon(beacon, secret)
    assert len(data) < 200
    assert decode_beacon(data, secret=secret, now=NOW) == beacon


def test_signed_beacon_accepted_without_secret() -> None:
    """A listener without a secret accepts a signed beacon, ignoring the signature and age."""
    beacon = make_beacon(timestamp=NOW)
    assert decode_beacon(encode_beacon(beacon, SECRET), now=NOW + 1e6) == beacon


def test_tampered_signature_rejected() -> None:
    """A flipped signature byte, a changed payload, or the wrong secret fail verification."""
    beacon = make_beacon(timestamp=NOW)
    payload, signature = msgpack.unpackb(encode_beacon(beacon, SECRET))
    bad_sig = bytes([signature[0] ^ 1]) + signature[1:]
    forged = encode_beacon(make_beacon(role="control-plane", timestamp=NOW))
    forged_payload = msgpack.unpackb(forged)[0]
    for data in (
        msgpack.packb([payload, bad_sig]),
        msgpack.packb([forged_payload, signature]),
        encode_beacon(beacon, b"other-secret"),
    ):
        with pytest.raises(DiscoveryError, match="bad-signature"):
            decode_beacon(data, secret=SECRET, now=NOW)


def test_unsigned_beacon_rejected_when_secret_set() -> None:
    """With a cluster secret, a beacon without any signature is refused as unsigned."""
    data = encode_beacon(make_beacon(timestamp=NOW))
    with pytest.raises(DiscoveryError, match="unsigned"):
        decode_beacon(data, secret=SECRET, now=NOW)


@pytest.mark.parametrize(("offset", "reason"), [(-31.0, "stale"), (31.0, "future")])
def test_stale_or_future_timestamp_rejected_with_secret(offset: float, reason: str) -> None:
    """With a secret, beacons over max_age old or ahead are refused (replay protection)."""
    data = encode_beacon(make_beacon(timestamp=NOW + offset), SECRET)
    with pytest.raises(DiscoveryError, match=reason):
        decode_beacon(data, secret=SECRET, now=NOW, max_age=30.0)
    assert decode_beacon(data, secret=SECRET, now=NOW, max_age=60.0).timestamp == NOW + offset
    assert decode_beacon(data, now=NOW, max_age=30.0).timestamp == NOW + offset


def test_unknown_format_version_and_bad_shapes_rejected() -> None:
    """Unknown format versions, wrong shapes and wrong field types raise DiscoveryError."""
    good = [PROTOCOL_VERSION, "default", "n1", "worker", "ws://x", 3, NOW]
    cases = {
        "version": [PROTOCOL_VERSION + 1, *good[1:]],
        "6 beacon fields": good[:-1],
        "protocol_version": [*good[:5], True, NOW],
        "node_id is empty": [good[0], "default", "", *good[3:]],
        "timestamp is not finite": [*good[:6], math.nan],
    }
    for match, fields in cases.items():
        with pytest.raises(DiscoveryError, match=match):
            decode_beacon(msgpack.packb([msgpack.packb(fields), None]))
    for data in (b"", b"\xc1", msgpack.packb({"a": 1}), msgpack.packb([b"x", "sig"])):
        with pytest.raises(DiscoveryError, match="malformed"):
            decode_beacon(data)
    with pytest.raises(DiscoveryError, match="cannot encode"):
        encode_beacon(make_beacon(protocol_version="3"))


@given(st.binary(max_size=2048), st.sampled_from([None, SECRET]))
def test_arbitrary_bytes_only_raise_discovery_error(data: bytes, secret: bytes | None) -> None:
    """decode_beacon on arbitrary bytes either returns a Beacon or raises DiscoveryError."""
    try:
        assert isinstance(decode_beacon(data, secret=secret), Beacon)
    except DiscoveryError:
        pass


_msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=8),
    max_leaves=20,
)
_beacon_like = st.lists(_msgpack_values, max_size=9) | st.lists(
    _msgpack_values, min_size=6, max_size=6
).map(lambda rest: [PROTOCOL_VERSION, *rest])


@given(_beacon_like, st.booleans())
def test_structured_junk_only_raises_discovery_error(fields: list[object], nested: bool) -> None:
    """Valid msgpack of the wrong shape, bare or enveloped, only raises DiscoveryError."""
    data = msgpack.packb([msgpack.packb(fields), None]) if nested else msgpack.packb(fields)
    try:
        assert isinstance(decode_beacon(data), Beacon)
    except DiscoveryError:
        pass


def test_config_validation() -> None:
    """Bad ports, non-IPv4 addresses and non-positive periods raise DiscoveryError."""
    for kwargs in (
        {"port": 0},
        {"port": 70000},
        {"broadcast_address": "not-an-ip"},
        {"bind_address": "::1"},
        {"interval": 0},
        {"expiry": -1},
    ):
        with pytest.raises(DiscoveryError):
            DiscoveryConfig(**kwargs)


# --- peer table (pure, virtual time) -----------------------------------------------------------


def test_peer_table_appear_refresh_change_expire() -> None:
    """The table reports new peers, refreshes silently, re-announces changes, expires on time."""
    table = PeerTable(expiry=3.5)
    addr = ("127.0.0.1", 5000)
    [appeared] = table.observe(make_beacon("a"), addr, now=10.0)
    assert isinstance(appeared, PeerAppeared) and appeared.peer.last_seen == 10.0
    assert table.next_deadline() == 13.5
    assert table.observe(make_beacon("a"), addr, now=12.0) == []
    assert table.peers()["a"].last_seen == 12.0
    assert table.expire(now=15.4) == []
    moved = table.observe(make_beacon("a", url="ws://127.0.0.1:9999"), addr, now=13.0)
    assert [type(e) for e in moved] == [PeerDisappeared, PeerAppeared]
    assert moved[0].peer.url == "ws://127.0.0.1:8765"
    assert moved[1].peer.url == "ws://127.0.0.1:9999"
    table.observe(make_beacon("b"), addr, now=14.0)
    [gone] = table.expire(now=16.5)
    assert isinstance(gone, PeerDisappeared) and gone.peer.node_id == "a"
    assert list(table.peers()) == ["b"]
    assert [e.peer.node_id for e in table.expire(now=100.0)] == ["b"]
    assert table.next_deadline() is None and table.peers() == {}


# --- listeners on loopback ---------------------------------------------------------------------


async def test_two_listeners_on_one_port_both_hear_a_beacon() -> None:
    """With SO_REUSEPORT, two listeners on the same port each see one broadcasting sender."""
    config = DiscoveryConfig(port=free_udp_port(), interval=0.05)
    async with (
        open_discovery_listener(config) as first,
        open_discovery_listener(config) as second,
        beacon_running(config, "sender"),
    ):
        with trio.fail_after(TIMEOUT):
            assert (await first.wait_for_peer()).node_id == "sender"
            peer = await second.wait_for_peer()
    assert peer.url == "ws://127.0.0.1:9/sender"
    assert peer.protocol_version == 7 and peer.address[0] == "127.0.0.1"


async def test_peer_appears_then_disappears_after_sender_stops() -> None:
    """A listener emits PeerAppeared for a sender and PeerDisappeared once it falls silent."""
    config = DiscoveryConfig(port=free_udp_port(), interval=0.05, expiry=0.5)
    async with open_discovery_listener(config) as listener:
        events = listener.events()
        with trio.fail_after(TIMEOUT):
            async with beacon_running(config, "short-lived"):
                first = await events.__anext__()
            second = await events.__anext__()
    assert isinstance(first, PeerAppeared) and first.peer.node_id == "short-lived"
    assert isinstance(second, PeerDisappeared) and second.peer.node_id == "short-lived"
    assert listener.peers() == {}


async def test_junk_and_foreign_cluster_ignored_and_counted() -> None:
    """Junk datagrams and another cluster's beacons are counted and ignored; valid peers appear."""
    config = DiscoveryConfig(port=free_udp_port(), cluster="mine", interval=0.05)
    foreign = encode_beacon(make_beacon("stranger", cluster="theirs"))
    async with open_discovery_listener(config) as listener:
        await send_raw(config.port, b"junk", b"\x93\x01", foreign)
        await send_raw(config.port, b"more junk", address="127.0.0.1")
        async with beacon_running(config, "friend"):
            with trio.fail_after(TIMEOUT):
                peer = await listener.wait_for_peer()
        stats = listener.statistics()
    assert peer.node_id == "friend" and set(listener.peers()) == {"friend"}
    assert stats.ignored == {"malformed": 3, "foreign-cluster": 1}
    assert stats.received >= 5 and stats.accepted >= 1 and stats.peers == 1


async def test_secret_listener_ignores_unsigned_and_wrongly_signed() -> None:
    """A listener with a secret counts unsigned and wrong-secret beacons and takes signed ones."""
    config = DiscoveryConfig(port=free_udp_port(), interval=0.05, secret=SECRET)
    async with open_discovery_listener(config) as listener:
        unsigned = encode_beacon(make_beacon("anon"))
        wrong = encode_beacon(make_beacon("impostor"), b"guess")
        await send_raw(config.port, unsigned, wrong)
        async with beacon_running(config, "member"):
            with trio.fail_after(TIMEOUT):
                assert (await listener.wait_for_peer()).node_id == "member"
    assert listener.statistics().ignored == {"unsigned": 1, "bad-signature": 1}


async def test_wait_for_peer_filters_by_role() -> None:
    """wait_for_peer(role) waits past peers of other roles and returns at once when known."""
    config = DiscoveryConfig(port=free_udp_port(), interval=0.05)
    async with open_discovery_listener(config) as listener, trio.open_nursery() as nursery:
        found: list[str] = []
        done = trio.Event()

        async def waiter() -> None:
            found.append((await listener.wait_for_peer("control-plane")).node_id)
            done.set()

        nursery.start_soon(waiter)
        async with beacon_running(config, "w1", role="worker"):
            with trio.fail_after(TIMEOUT):
                assert (await listener.wait_for_peer("worker")).node_id == "w1"
                assert found == []
                async with beacon_running(config, "cp", role="control-plane"):
                    peer = await listener.wait_for_peer("control-plane")
                    await done.wait()
    assert peer.node_id == "cp" and peer.role == "control-plane" and found == ["cp"]


async def test_own_node_id_ignored() -> None:
    """A listener given ignore_node_id never lists its own node, and counts its beacons."""
    config = DiscoveryConfig(port=free_udp_port(), interval=0.05)
    async with open_discovery_listener(config, ignore_node_id="me") as listener:
        await send_raw(config.port, encode_beacon(make_beacon("me")))
        async with beacon_running(config, "me"), beacon_running(config, "other"):
            with trio.fail_after(TIMEOUT):
                assert (await listener.wait_for_peer()).node_id == "other"
    assert "me" not in listener.peers()
    assert listener.statistics().ignored["self"] >= 1


async def test_slow_subscriber_drops_oldest_only_for_itself() -> None:
    """A lagging events() stream keeps the newest events and counts drops; others get all."""
    config = DiscoveryConfig(port=free_udp_port())
    async with open_discovery_listener(config) as listener:
        slow = listener.events(buffer=2)
        fast = listener.events()
        await send_raw(config.port, *(encode_beacon(make_beacon(f"n{i}")) for i in range(5)))
        with trio.fail_after(TIMEOUT):
            seen = [(await fast.__anext__()).peer.node_id for _ in range(5)]
        assert seen == ["n0", "n1", "n2", "n3", "n4"]
        assert slow.dropped == 3 and fast.dropped == 0
        assert listener.statistics().events_dropped == 3
        assert [(await slow.__anext__()).peer.node_id for _ in range(2)] == ["n3", "n4"]


async def test_leaving_listener_ends_event_streams() -> None:
    """Leaving the listener block ends every events() iterator and wakes wait_for_peer."""
    config = DiscoveryConfig(port=free_udp_port())
    received: list[object] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            async with open_discovery_listener(config) as listener:
                events = listener.events()

                async def consume() -> None:
                    async for event in events:
                        received.append(event)

                async def wait() -> None:
                    with pytest.raises(DiscoveryError, match="closed"):
                        await listener.wait_for_peer()

                nursery.start_soon(consume)
                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
    assert received == []


async def test_body_error_propagates_unwrapped() -> None:
    """An exception raised inside the listener block comes out as itself, not in a group."""
    with pytest.raises(ValueError, match="boom"):
        async with open_discovery_listener(DiscoveryConfig(port=free_udp_port())):
            raise ValueError("boom")


async def test_bind_failure_is_discovery_error() -> None:
    """Binding to an address that is not local raises DiscoveryError, not a bare OSError."""
    with pytest.raises(DiscoveryError, match="cannot bind"):
        async with open_discovery_listener(
            DiscoveryConfig(port=free_udp_port(), bind_address="192.0.2.1")
        ):
            pass  # pragma: no cover


async def test_listener_expiry_runs_in_virtual_time(autojump_clock: trio.abc.Clock) -> None:
    """The expiry task uses trio.current_time: a peer expires after `expiry` virtual seconds."""
    config = DiscoveryConfig(port=free_udp_port(), expiry=60.0)
    async with open_discovery_listener(config) as listener:
        events = listener.events()
        await send_raw(config.port, encode_beacon(make_beacon("ghost")))
        appeared = await events.__anext__()
        start = trio.current_time()
        disappeared = await events.__anext__()
    assert isinstance(appeared, PeerAppeared) and isinstance(disappeared, PeerDisappeared)
    assert trio.current_time() - start == pytest.approx(60.0, abs=1.0)
