"""Finding the control plane by its UDP beacon."""

from __future__ import annotations

import actors

from ._names import ROLE_CONTROL_PLANE

CONTROL_PLANE_ROLE = ROLE_CONTROL_PLANE


async def discover_control_plane(
    cluster: str = "default",
    secret: bytes | None = None,
    port: int = actors.DEFAULT_DISCOVERY_PORT,
) -> str:
    """Wait for a control plane beacon of ``cluster`` and return its URL.

    Listens on the discovery port (all interfaces, so broadcasts are heard); with a
    secret, unsigned or badly signed beacons are ignored. The caller owns the timeout.
    """
    config = actors.DiscoveryConfig(cluster=cluster, port=port, secret=secret)
    async with actors.open_discovery_listener(config) as listener:
        peer = await listener.wait_for_peer(role=CONTROL_PLANE_ROLE)
        return reachable_url(peer.url, peer.address[0])


def reachable_url(url: str, source_ip: str) -> str:
    """A control plane listening on a wildcard address (0.0.0.0, ::) announces that
    address; the beacon's source address is where it can actually be reached."""
    scheme, sep, rest = url.partition("://")
    host, colon, port = rest.rpartition(":")
    if sep and colon and host.strip("[]") in ("0.0.0.0", "::", ""):
        shown = f"[{source_ip}]" if ":" in source_ip else source_ip
        return f"{scheme}://{shown}:{port}"
    return url
