"""What two nodes agree on before any actor message: version, close codes, limits, control.

The link protocol's constants (``PROTOCOL_VERSION``, the 4000-range close codes), the
timing and size limits of links (``LinkConfig``), and the control messages a link
carries besides actor envelopes: ``Hello`` and ``Proof`` (the handshake, ``_handshake``),
``Ping`` (heartbeats) and ``Notice`` (a refusal report; both used by ``_link``), and
how an error answering an ask travels (``[type name, text]``, read back by
``error_from``).
"""

from __future__ import annotations

from typing import Any

import attrs

from ._codec import message
from ._errors import (
    ActorCrashed,
    ActorError,
    ActorGone,
    ActorNotFound,
    BodyError,
    CodecError,
    MailboxFull,
    MessageTooLarge,
    RemoteError,
    UnknownMessageType,
)

PROTOCOL_VERSION = 1

CLOSE_PROTOCOL = 4000
CLOSE_AUTH = 4001
CLOSE_CLUSTER = 4002
CLOSE_SUPERSEDED = 4003
CLOSE_HEARTBEAT = 4008


@attrs.frozen
class LinkConfig:
    """Timing and size limits of links.

    A dead or frozen peer is noticed within ``heartbeat_timeout + heartbeat_interval``.
    A listener accepts at most ``max_connections`` connections at once, counted from the
    TCP accept (so connections still in their HTTP upgrade or hello count too); more are
    refused with HTTP 503 and a reason. ``handshake_timeout`` bounds the HTTP upgrade
    and, separately, the hello (and proof) exchange.
    """

    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    handshake_timeout: float = 5.0
    connect_timeout: float = 5.0
    disconnect_timeout: float = 1.0
    max_frame_size: int = 16 * 1024 * 1024
    outbox_limit: int = 10_000
    max_connections: int = 1024
    reconnect_initial: float = 0.05
    reconnect_max: float = 5.0


# -- control messages ----------------------------------------------------------------


@message("actors.Hello")
@attrs.frozen
class Hello:
    """First message each way on a link."""

    node_id: str
    role: str
    cluster: str
    version: int
    nonce: bytes
    auth: bool
    max_frame: int = 0
    """The largest frame this node accepts (0: not said); the peer sends no larger."""


@message("actors.Proof")
@attrs.frozen
class Proof:
    """HMAC over both nonces and the sender's node id, proving the cluster secret."""

    mac: bytes


@message("actors.Ping")
@attrs.frozen
class Ping:
    """Sent when a side has been silent for a heartbeat interval."""


@message("actors.Notice")
@attrs.frozen
class Notice:
    """A link-level error report: a frame or message of the receiver's was refused."""

    text: str


# -- errors across the link ----------------------------------------------------------

_KNOWN_ERRORS: dict[str, type[ActorError]] = {
    cls.__name__: cls
    for cls in (
        ActorNotFound,
        ActorGone,
        ActorCrashed,
        MailboxFull,
        BodyError,
        UnknownMessageType,
        CodecError,
        MessageTooLarge,
    )
}


def error_from(body: Any) -> BaseException:
    """The exception an error reply (a FAIL envelope's ``[type name, text]``) stands for."""
    if isinstance(body, list) and len(body) == 2 and all(isinstance(x, str) for x in body):
        type_name, text = body
        known = _KNOWN_ERRORS.get(type_name)
        if known is not None:
            return known(text)
        return RemoteError(type_name, text)
    return RemoteError("ProtocolError", f"malformed error reply: {body!r:.100}")
