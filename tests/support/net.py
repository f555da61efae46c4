"""Ports on loopback and URLs."""

from __future__ import annotations

import socket


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago.

    Prefer port 0 where the code under test reports the port it got; this is for
    processes that must be told a port up front (CLI servers, fixed URLs).
    """
    return _free_port(socket.SOCK_STREAM)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing was bound to a moment ago (a private
    discovery channel, so that concurrent test runs do not hear each other's beacons)."""
    return _free_port(socket.SOCK_DGRAM)


def host_port(url: str) -> tuple[str, int]:
    """Host and port of a ws:// or wss:// URL."""
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)
