"""The UDP sockets of discovery: shared listening sockets and where to bind them."""

from __future__ import annotations

import contextlib
import ipaddress
import logging

import trio

from actors._discovery_beacon import DiscoveryConfig

logger = logging.getLogger("actors.discovery")


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
    """A UDP socket several processes of one host can bind to the same port."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
    reuse_port = getattr(trio.socket, "SO_REUSEPORT", None)
    if reuse_port is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(trio.socket.SOL_SOCKET, reuse_port, 1)
    return sock


def _broadcast_socket() -> trio.socket.SocketType:
    """A UDP socket allowed to send to a broadcast address."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    try:
        sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_BROADCAST, 1)
    except BaseException:
        sock.close()
        raise
    return sock
