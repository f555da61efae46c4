"""ClientSettings: every option of ``open_client`` and ``connect`` as one frozen record."""

from __future__ import annotations

import ssl
from typing import Any

import attrs

import actors

from ._serialization import DEFAULT_MAX_PAYLOAD
from ._settle import hidden, settle


@attrs.frozen(kw_only=True)
class ClientSettings:
    """The options of ``open_client`` and ``connect`` (``url`` included), as one value.

    Build it once (from a config file, say) and pass it whole:
    ``open_client(settings=settings)``, ``connect(settings=settings)``;
    ``attrs.evolve(settings, cluster="b")`` changes one field. The fields, their
    defaults and their meaning are those of ``open_client``'s arguments.
    """

    url: str | None = None
    cluster: str = "default"
    secret: str | bytes | None = attrs.field(default=None, repr=hidden)
    connect_timeout: float = 10.0
    reconnect_timeout: float = 10.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    ssl_context: ssl.SSLContext | None = None
    link: actors.LinkConfig | None = None
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT


def client_settings(
    caller: str, settings: ClientSettings | None, options: dict[str, Any]
) -> ClientSettings:
    """``settings`` if given (then every option must be at its default), else a record
    of ``options`` (keyword names of ClientSettings fields).

    Raises:
        ConfigurationError: ``settings`` is not a ClientSettings, or comes together
            with options other than their defaults (named in the message).
    """
    return settle(ClientSettings, settings, options, caller)
