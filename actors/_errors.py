"""The error tree of the actor runtime: every error it raises derives from ActorError."""

from __future__ import annotations


class ActorError(Exception):
    """Base of every error raised by the ``actors`` runtime."""


class ActorNotFound(ActorError):
    """No actor is registered under that name (on this node or on the peer)."""


class ActorGone(ActorError):
    """The actor stopped for good; its mailbox no longer takes messages."""


class ActorCrashed(ActorError):
    """The actor raised while handling this request; the ask gets this instead of a reply."""


class NameTaken(ActorError):
    """An actor with that name is already running on this node: pick another name."""


class MailboxFull(ActorError):
    """The mailbox is at capacity and its overflow policy rejected the message."""


class RemoteError(ActorError):
    """The remote actor answered an ask with an error.

    ``type_name`` is the remote exception's class name and ``message`` its text, so the
    caller can tell a validation error from a crash without unpickling anything.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message


class CodecError(ActorError):
    """A frame, envelope or message body could not be encoded or decoded."""


class UnknownMessageType(CodecError):
    """The envelope names a message type this node has not registered."""


class BodyError(CodecError):
    """The body does not match its declared message type (the text names type and field)."""


class LinkError(ActorError):
    """Base of errors about a link between two nodes."""


class PeerDown(LinkError):
    """The link to that peer is down (closed, heartbeats missed, or never connected)."""


class HandshakeError(LinkError):
    """The hello exchange failed: wrong protocol version, wrong cluster, or a malformed hello.

    ``code`` is the websocket close code (4000-4999) that was or will be used.
    """

    def __init__(self, message: str, code: int = 4000) -> None:
        super().__init__(message)
        self.code = code


class AuthenticationFailed(HandshakeError):
    """The peer could not prove it knows the cluster secret (close code 4001).

    The same name as ``fastworker.AuthenticationFailed`` (which the client and the
    subworker raise for it).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code=4001)


AuthenticationError = AuthenticationFailed
"""The former name of AuthenticationFailed; kept so existing code keeps working."""


class ConnectionFailed(LinkError, ConnectionError):
    """Could not open a link to that address (nothing listening, refused, or timed out).

    The same name, and the same builtin base (``ConnectionError``), as
    ``fastworker.ConnectionFailed``: ``except ConnectionError`` catches a failed
    connection from either layer.
    """


ConnectFailed = ConnectionFailed
"""The former name of ConnectionFailed; kept so existing ``except ConnectFailed`` works."""


class EscalationError(ActorError):
    """A supervised child exceeded its restart intensity; the supervisor gave up.

    The child's last exception is chained as ``__cause__``.
    """


class DiscoveryError(ActorError):
    """Bad discovery configuration (address, port) or an undecodable beacon."""


class MessageTooLarge(CodecError):
    """An encoded message is bigger than the link's max frame size: send a reference instead."""


class LinkClosed(LinkError):
    """The transport under a link closed; ``code`` and ``reason`` say how (1006: abnormal)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"link closed ({code}): {reason}" if reason else f"link closed ({code})")
        self.code = code
        self.reason = reason
