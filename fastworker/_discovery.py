"""Finding the control plane: ask the network, and never pick one of two silently."""

from __future__ import annotations

import math

import trio

import actors

from ._errors import AuthenticationFailed, ConnectionFailed
from ._names import ROLE_CONTROL_PLANE

CONTROL_PLANE_ROLE = ROLE_CONTROL_PLANE
ANSWER_GRACE = 0.04
"""Seconds to wait after the first answer for others (two systems under one name)."""

_REASONS = {
    "bad-signature": "its beacons are signed with another secret",
    "unsigned": "it runs without a cluster secret, but one was given here",
}


async def discover_control_plane(
    cluster: str = "default",
    secret: bytes | None = None,
    port: int = actors.DEFAULT_DISCOVERY_PORT,
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (on timeout, the error says what was heard)
) -> str:
    """The URL of the one control plane of ``cluster`` on this network.

    Asks at once ("who serves cluster X?") and listens for beacons; control planes
    answer queries immediately, so this takes milliseconds when one is up. With a secret,
    unsigned or badly signed answers are not trusted. Without ``timeout`` it waits until
    one answers (the caller owns the timeout).

    Raises:
        ConnectionFailed: two control planes answer for ``cluster`` (naming both URLs),
            or none within ``timeout``.
        AuthenticationFailed: within ``timeout`` only control planes with another
            secret answered.
    """
    config = actors.DiscoveryConfig(cluster=cluster, port=port, secret=secret)
    try:
        async with actors.open_peer_query(config, CONTROL_PLANE_ROLE) as query:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                peers = await query.wait_for_peers(ANSWER_GRACE)
                urls = sorted({reachable_url(p.url, p.address[0]) for p in peers})
                if len(urls) > 1:
                    raise ConnectionFailed(
                        f"{len(urls)} control planes answer for cluster {cluster!r}: "
                        f"{', '.join(urls)}. Pass the one you mean with --url (url=...), "
                        "or give each system its own --cluster name"
                    )
                return urls[0]
            refusals = query.refusals()
    except actors.DiscoveryError as exc:
        raise ConnectionFailed(f"cannot look for cluster {cluster!r}: {exc}") from None
    if refusals:
        refusal = refusals[0]
        url = reachable_url(refusal.url, refusal.address[0])
        raise AuthenticationFailed(
            f"the control plane of cluster {cluster!r} at {url} answered, but "
            f"{_REASONS.get(refusal.reason, refusal.reason)}: check --secret-file "
            "(the same secret on every node)"
        )
    raise ConnectionFailed(
        f"cannot reach a control plane of cluster {cluster!r}: none answered within "
        f"{timeout}s (no beacon heard on discovery port {port}): is it running? "
        "(fastworker run-actor-system --tasks ...); or pass --url ws://HOST:PORT"
    )


def reachable_url(url: str, source_ip: str) -> str:
    """A control plane listening on a wildcard address (0.0.0.0, ::) announces that
    address; the beacon's source address is where it can actually be reached."""
    scheme, sep, rest = url.partition("://")
    host, colon, port = rest.rpartition(":")
    if sep and colon and host.strip("[]") in ("0.0.0.0", "::", ""):
        shown = f"[{source_ip}]" if ":" in source_ip else source_ip
        return f"{scheme}://{shown}:{port}"
    return url
