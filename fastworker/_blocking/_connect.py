"""``fastworker.connect()``: make the process's blocking client."""

from __future__ import annotations

import ssl

import actors

from .._client_settings import ClientSettings, client_settings
from .._serialization import DEFAULT_MAX_PAYLOAD
from ._calls import BlockingClient


def connect(
    url: str | None = None,
    *,
    cluster: str = "default",
    secret: str | bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    reconnect_timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
    link: actors.LinkConfig | None = None,
    lazy: bool = False,
    settings: ClientSettings | None = None,
) -> BlockingClient:
    """A blocking client for threads and sync code, shared by every thread.

    Connects at once (``lazy=True``: on first use, e.g. at import time of a web app);
    ``url`` None discovers the control plane. Use it with ``with``, or keep it for the
    life of the process; a forked child reconnects on first use. Every option after
    ``url`` is keyword-only; ``settings`` (a ClientSettings) gives the connection's
    options, ``url`` included, as one value instead (``lazy`` still goes beside it).

    Args:
        url: ``ws://HOST:PORT`` (``wss://`` with TLS); None discovers it.
        cluster: the cluster's name.
        secret: the cluster secret, if the cluster has one.
        ssl_context: the TLS context for a ``wss://`` URL.
        connect_timeout: seconds to find and reach the control plane.
        reconnect_timeout: seconds a call waits for a lost link to come back.
        max_payload: the largest packed arguments (and results) in bytes.
        discovery_port: the UDP port discovery uses.
        link: link settings (frame size, heartbeats); default from ``max_payload``.
        lazy: connect on first use instead of now.
        settings: every option above but ``lazy`` as one ClientSettings; then pass
            no other.

    Returns:
        The BlockingClient.

    Raises:
        ConnectionFailed: the control plane is unreachable within ``connect_timeout``
            (not raised with ``lazy``: the first call raises it then).
        AuthenticationFailed: the control plane refused the secret.
        ConfigurationError: ``settings`` together with other options (raised at
            once, ``lazy`` or not); a bad URL or secret, or a TLS context for a ws://
            URL.
    """
    options = {k: v for k, v in locals().items() if k not in ("lazy", "settings")}
    client = BlockingClient(client_settings("connect", settings, options))
    if not lazy:
        client.connect()
    return client
