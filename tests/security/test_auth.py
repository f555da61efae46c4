"""Authentication: nothing from a peer is handled before it proved the cluster secret.

Beyond tests/actors (a bad proof, a hello without auth, stale beacon timestamps at the
codec level) this checks what an unauthenticated peer achieves: its messages never
reach an actor or the dead letters, it never becomes a peer, it cannot displace a
real node by using its node id, a beacon captured off the wire is refused once older
than max_age and cannot be re-dated, and the CLI refuses to expose a secret-less
control plane beyond loopback.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import support
import trio
import trio.testing
from security_support import (
    SECRET,
    TIMEOUT,
    Order,
    RawClient,
    Recorder,
    alongside_good_client,
    raw_client,
    serving,
)
from support import free_tcp_port, free_udp_port, wait_until
from trio_websocket import CloseReason

from actors import (
    DiscoveryConfig,
    Kind,
    LinkDown,
    LinkUp,
    open_discovery_listener,
    run_beacon,
)
from actors._link import Proof

HERE = Path(__file__).resolve().parent


# -- nothing is handled before the proof --------------------------------------------------------


async def tell_after_hello_offering_auth(raw: RawClient) -> None:
    """Hello with auth=True, then a TELL and an ASK where the proof should be."""
    await raw.handshake(auth=True)
    await raw.send_envelope(Kind.TELL, "recorder", 0, "smuggled tell")
    await raw.send_envelope(Kind.ASK, "recorder", 1, "smuggled ask")


async def tell_after_hello_without_auth(raw: RawClient) -> None:
    """Hello that does not offer auth at all, then a TELL right behind it."""
    await raw.handshake(auth=False)
    await raw.send_envelope(Kind.TELL, "recorder", 0, "smuggled tell")


async def tell_in_the_proof_frame(raw: RawClient) -> None:
    """A (wrong) proof and a TELL in the same frame."""
    await raw.handshake(auth=True)
    await raw.receive_control(Proof)
    await raw.send(
        raw.codec.encode_frame(
            [
                (Kind.CONTROL, "", None, 0, Proof(b"\x00" * 32)),
                (Kind.TELL, "recorder", None, 0, "smuggled tell"),
            ]
        )
    )


async def tell_after_a_wrong_proof(raw: RawClient) -> None:
    """A wrong proof, then a TELL in the next frame (before reading the close)."""
    await raw.handshake(auth=True)
    await raw.receive_control(Proof)
    await raw.send_envelope(Kind.CONTROL, "", 0, Proof(b"\x01" * 32))
    await raw.send_envelope(Kind.TELL, "recorder", 0, Order("smuggled", 1))


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        (tell_after_hello_offering_auth, "authentication failed: expected one Proof"),
        (tell_after_hello_without_auth, "no cluster secret"),
        (tell_in_the_proof_frame, "authentication failed: expected one Proof"),
        (tell_after_a_wrong_proof, "authentication failed: the peer does not know"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_a_peer_without_the_secret_is_closed_with_4001_before_its_messages_are_handled(
    attack: Any, reason: str
) -> None:
    """Messages sent around the hello by a peer that has not proved the secret are never
    delivered (not to the actor, not to the dead letters), the peer is closed with 4001
    and a reason, it never becomes a peer and no LinkUp is announced for it."""
    async with serving(secret=SECRET) as server:
        events: list[Any] = []
        monitor = await server.system.spawn("link-monitor", lambda: Recorder(events))
        server.system.monitor_peers(monitor)
        peers_before = set(server.system.peers())
        dead_before = server.system.dead_letters.count

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await attack(raw)
                return await raw.closed()

        close = await alongside_good_client(server, bad)
        # The server runs in this trio run: once every task is blocked, every frame the bad
        # client sent has been read and anything wrongly delivered has been handled.
        with trio.fail_after(TIMEOUT):
            await trio.testing.wait_all_tasks_blocked()
        assert server.received == []
        assert server.system.dead_letters.count == dead_before
        assert set(server.system.peers()) == peers_before
        assert not [e for e in events if isinstance(e, LinkUp | LinkDown)], events
    assert close.code == 4001
    assert close.reason is not None and reason in close.reason


async def test_a_peer_using_a_connected_nodes_id_without_the_secret_cannot_displace_it() -> None:
    """A hello claiming the node id of the connected good client, without a valid proof,
    is refused with 4001 and the good client's link is not superseded."""
    async with serving(secret=SECRET) as server:
        victim = server.good.system.node_id

        async def impersonate() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake(auth=True, node_id=victim, role="good-client")
                await raw.receive_control(Proof)
                await raw.send_envelope(Kind.CONTROL, "", 0, Proof(b"\x02" * 32))
                return await raw.closed()

        close = await alongside_good_client(server, impersonate)
        assert close.code == 4001
        assert server.good.links_opened == 1 and server.good.connected
        assert server.system.peer(victim).connected


# -- beacons --------------------------------------------------------------------------------


async def capture_beacon(config: DiscoveryConfig, capture_port: int) -> bytes:
    """One real beacon datagram, as a node with ``config`` sends it (captured off the wire)."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        await sock.bind(("127.0.0.1", capture_port))
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_beacon(
                    config,
                    node_id="real-control-plane",
                    role="control-plane",
                    url="ws://127.0.0.1:9",
                    protocol_version=1,
                    task_status=task_status,
                )
            )
            with trio.fail_after(TIMEOUT):
                data, _ = await sock.recvfrom(65536)
            nursery.cancel_scope.cancel()
    return bytes(data)


async def send_datagram(data: bytes, port: int) -> None:
    """Send ``data`` to the loopback broadcast address."""
    with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
        await sock.sendto(data, ("127.255.255.255", port))


async def test_a_captured_beacon_replayed_after_max_age_is_ignored() -> None:
    """With a secret, a real signed beacon captured off the wire is accepted while fresh,
    ignored as stale once older than max_age, and cannot be re-dated: a replay with the
    timestamp changed to now fails its signature. The node never appears."""
    capture_port, listen_port = free_udp_port(), free_udp_port()
    sender = DiscoveryConfig(
        port=capture_port, broadcast_address="127.0.0.1", secret=SECRET, interval=60.0
    )
    listener_config = DiscoveryConfig(port=listen_port, secret=SECRET, max_age=0.5, expiry=60.0)
    datagram = await capture_beacon(sender, capture_port)
    async with open_discovery_listener(listener_config) as listener:
        await trio.sleep(0.7)  # real time that must pass: the capture is older than max_age
        await send_datagram(datagram, listen_port)
        payload, signature = msgpack.unpackb(datagram)
        fields = msgpack.unpackb(payload)
        fields[-1] = time.time()
        redated = msgpack.packb([msgpack.packb(fields), signature])
        await send_datagram(redated, listen_port)
        await wait_until(
            lambda: listener.statistics().received >= 2,
            timeout=TIMEOUT,
            what="the stale and the re-dated replay received",
            observe=listener.statistics,
        )
        stats = listener.statistics()
        assert stats.ignored == {"stale": 1, "bad-signature": 1}, stats
        assert listener.peers() == {}
    # The same beacon replayed within max_age is accepted: the replay window is max_age.
    fresh = await capture_beacon(sender, capture_port)
    async with open_discovery_listener(listener_config) as listener:
        await send_datagram(fresh, listen_port)
        with trio.fail_after(TIMEOUT):
            peer = await listener.wait_for_peer("control-plane")
        assert peer.node_id == "real-control-plane"


# -- the CLI refuses a secret-less control plane beyond loopback ----------------------------


@pytest.mark.parametrize(
    ("command", "host"), [("control-plane", "0.0.0.0"), ("run-actor-system", "::")]
)
async def test_the_cli_refuses_to_bind_beyond_loopback_without_a_secret(
    command: str, host: str
) -> None:
    """``fastworker control-plane --host 0.0.0.0`` (or ``::``, or run-actor-system) with no
    secret exits 2 with one line naming --insecure-allow-unauthenticated, before binding."""
    port = free_tcp_port()
    with trio.fail_after(60):
        code, out, err = await support.run_cli(
            command,
            "--tasks",
            "security_tasks",
            "--host",
            host,
            "--port",
            str(port),
            "--no-discovery",
            *(["--subworkers", "0"] if command == "run-actor-system" else []),
            cwd=HERE,
        )
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert "--insecure-allow-unauthenticated" in lines[0], err
    assert f"refusing to listen on {host} without a cluster secret" in lines[0], err
    with socket.socket() as sock:  # nothing was left listening on that port
        sock.bind(("127.0.0.1", port))
