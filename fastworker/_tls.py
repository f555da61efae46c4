"""Checks shared by every node that dials a control plane (client, subworker)."""

from __future__ import annotations

import ssl

from ._errors import ConfigurationError


def check_tls(url: str, ssl_context: ssl.SSLContext | None) -> None:
    """A TLS context is only for a wss:// URL: never fall back to plain text silently.

    Args:
        url: the control plane URL about to be dialled.
        ssl_context: the TLS context the caller passed, if any.

    Raises:
        ConfigurationError: ``url`` is not a ws://, wss:// or memory:// URL, or a TLS
            context was given for a plain ws:// URL.
    """
    scheme = url.partition(":")[0].lower()
    if scheme not in ("ws", "wss", "memory"):
        raise ConfigurationError(
            f"{url!r} is not a control plane URL: use ws://HOST:PORT (wss:// with TLS)"
        )
    if ssl_context is not None and url.lower().startswith("ws://"):
        raise ConfigurationError(
            f"a TLS context (--tls-ca) was given but {url} is not encrypted: "
            "connect to the control plane's wss:// URL (is it started with --tls-cert?)"
        )
