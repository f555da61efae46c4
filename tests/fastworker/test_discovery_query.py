"""Discovery that asks instead of waiting, and never guesses (real UDP on loopback)."""

from __future__ import annotations

import uuid

import pytest
import trio
import trio.testing
from support import free_udp_port

import actors
import fastworker
from actors._discovery import _listen_address, decode_beacon, decode_query, encode_query

TASKS = ["sample_tasks"]


def control_plane(cluster: str, port: int, **options: object) -> object:
    """An embedded control plane whose beacons come only every 60 s: a client that
    finds it sooner did so by asking."""
    return fastworker.open_control_plane(
        tasks=TASKS,
        port=0,
        cluster=cluster,
        discovery=True,
        discovery_port=port,
        beacon_interval=60.0,
        **options,  # type: ignore[arg-type]
    )


async def beacon_sent() -> None:
    """Return once the control plane's start-up beacon is out (the next is a minute away).

    The control plane runs in this trio run: its beacon task sends at once after start,
    then sleeps. Once every task is blocked, that datagram went to the sockets bound at
    the time, so a client that binds afterwards can only learn the URL by asking.
    """
    with trio.fail_after(10):
        await trio.testing.wait_all_tasks_blocked()


async def test_a_client_is_answered_at_once_not_at_the_next_beacon() -> None:
    """With beacons a minute apart, a client started after the first one still connects
    within seconds: the control plane answered its query."""
    port, cluster = free_udp_port(), f"ask-{uuid.uuid4().hex[:8]}"
    async with control_plane(cluster, port) as cp:  # type: ignore[attr-defined]
        await beacon_sent()
        with trio.fail_after(10):
            async with fastworker.open_client(cluster=cluster, discovery_port=port) as client:
                assert client.url == cp.url
                assert await client.call("add", 1, 2) == 3


async def test_two_control_planes_for_one_cluster_are_refused_naming_both() -> None:
    """Two systems under one cluster name: ConnectionFailed names both URLs and says
    how to choose; the client never picks one silently."""
    port, cluster = free_udp_port(), f"two-{uuid.uuid4().hex[:8]}"
    async with (
        control_plane(cluster, port) as first,  # type: ignore[attr-defined]
        control_plane(cluster, port) as second,  # type: ignore[attr-defined]
    ):
        with trio.fail_after(10):
            with pytest.raises(fastworker.ConnectionFailed) as caught:
                async with fastworker.open_client(cluster=cluster, discovery_port=port):
                    pass  # pragma: no cover
    text = str(caught.value)
    assert first.url in text and second.url in text
    assert "--url" in text and "--cluster" in text


async def test_a_wrong_secret_is_named_as_such() -> None:
    """A control plane with another secret: AuthenticationFailed saying so, not
    "is it running?"."""
    port, cluster = free_udp_port(), f"sec-{uuid.uuid4().hex[:8]}"
    async with control_plane(cluster, port, secret="right-secret"):  # type: ignore[attr-defined]
        with trio.fail_after(10):
            with pytest.raises(fastworker.AuthenticationFailed, match="another secret"):
                async with fastworker.open_client(
                    cluster=cluster, discovery_port=port, secret="wrong", connect_timeout=1.0
                ):
                    pass  # pragma: no cover


async def test_a_secret_given_to_a_control_plane_without_one_is_named() -> None:
    """The client has a secret, the control plane none: the error says exactly that."""
    port, cluster = free_udp_port(), f"nosec-{uuid.uuid4().hex[:8]}"
    async with control_plane(cluster, port):  # type: ignore[attr-defined]
        with trio.fail_after(10):
            with pytest.raises(fastworker.AuthenticationFailed, match="without a cluster secret"):
                async with fastworker.open_client(
                    cluster=cluster, discovery_port=port, secret="s3", connect_timeout=1.0
                ):
                    pass  # pragma: no cover


async def test_the_subworker_finds_the_control_plane_by_asking_too() -> None:
    """open_subworker(url=None) uses the same query: it joins long before a beacon."""
    port, cluster = free_udp_port(), f"sw-{uuid.uuid4().hex[:8]}"
    async with control_plane(cluster, port, local_concurrency=0) as cp:  # type: ignore[attr-defined]
        await beacon_sent()
        with trio.fail_after(10):
            async with (
                fastworker.open_subworker(
                    tasks=TASKS, cluster=cluster, discovery_port=port, concurrency=1
                ) as sw,
                fastworker.open_client(cp.url, cluster=cluster) as client,
            ):
                assert sw.url == cp.url
                assert await client.call("async_add", 1, 2) == 3


def test_queries_round_trip_and_are_not_beacons() -> None:
    """A query decodes to (cluster, role); an older beacon decoder refuses it as
    malformed, and junk is not a query."""
    data = encode_query("c1", "control-plane")
    assert decode_query(data) == ("c1", "control-plane")
    with pytest.raises(actors.DiscoveryError, match="malformed"):
        decode_beacon(data)
    assert decode_query(b"\xc1junk") is None
    assert decode_query(b"") is None


def test_the_query_listener_binds_loopback_when_beacons_stay_on_this_host() -> None:
    """Loopback broadcast: listen on the loopback broadcast address only; a subnet
    broadcast: all interfaces; an explicit bind address wins."""
    assert _listen_address(actors.DiscoveryConfig()) == "127.255.255.255"
    assert _listen_address(actors.DiscoveryConfig(broadcast_address="10.0.0.255")) == ""
    config = actors.DiscoveryConfig(broadcast_address="10.0.0.255", bind_address="10.0.0.1")
    assert _listen_address(config) == "10.0.0.1"
