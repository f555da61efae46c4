"""The handshake that opens every link: hellos each way, then proofs of the secret.

Each side sends a ``Hello`` (node uuid, role, cluster, protocol version, a nonce, the
largest frame it accepts). With a cluster secret each side then proves it knows the
secret with an HMAC over both nonces and its node id. Any failure closes the
connection with a 4000-range code and a readable reason, on both sides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

import trio

from ._codec import Codec, Kind
from ._errors import AuthenticationError, CodecError, HandshakeError, LinkClosed
from ._link_protocol import (
    CLOSE_AUTH,
    CLOSE_CLUSTER,
    CLOSE_PROTOCOL,
    PROTOCOL_VERSION,
    Hello,
    Proof,
)

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Connection

_AUTH_LABEL = b"actors-link-auth-v1"


def _proof(secret: bytes, verifier_nonce: bytes, prover_nonce: bytes, prover_id: str) -> bytes:
    return hmac.new(
        secret, _AUTH_LABEL + verifier_nonce + prover_nonce + prover_id.encode(), hashlib.sha256
    ).digest()


async def _receive_control(codec: Codec, connection: Connection, expected: type) -> Any:
    frame = await connection.receive()
    try:
        envelopes = codec.decode_frame(frame)  # type: ignore[arg-type]
        if len(envelopes) != 1 or envelopes[0][0] != Kind.CONTROL:
            raise CodecError(f"expected one {expected.__name__} control message first")
        msg = codec.structure(envelopes[0][4], envelopes[0][5])
        if not isinstance(msg, expected):
            raise CodecError(f"expected {expected.__name__}, got {type(msg).__name__}")
    except CodecError as exc:
        if expected is Proof:
            # Anything but the proof (a message sent early, garbage) fails authentication:
            # the peer is closed with 4001 and nothing it sent is handled.
            raise AuthenticationError(f"authentication failed: {exc}") from None
        raise HandshakeError(f"bad handshake: {exc}", CLOSE_PROTOCOL) from None
    return msg


async def handshake(system: Node, connection: Connection) -> Hello:
    """Exchange hellos (and proofs, with a secret); return the peer's hello.

    On failure the connection is closed with a 4000-range code and a readable reason,
    and HandshakeError (AuthenticationError for 4001) is raised. A close received from
    the peer during the handshake is turned into the same errors, so both sides learn
    why.

    Raises:
        HandshakeError: the hellos do not match (version, cluster, the node itself), a
            message came out of order, or the handshake timed out.
        AuthenticationError: one side has the cluster secret and the other not, or the
            peer's proof is wrong.
        LinkClosed: the connection closed without a 4000-range reason.
    """
    codec = system.codec
    secret = system.config.secret
    nonce = secrets.token_bytes(16)
    mine = Hello(
        node_id=system.node_id,
        role=system.role,
        cluster=system.cluster,
        version=PROTOCOL_VERSION,
        nonce=nonce,
        auth=secret is not None,
        max_frame=system.config.link.max_frame_size,
    )
    try:
        with trio.fail_after(system.config.link.handshake_timeout):
            await connection.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, mine)]))
            theirs: Hello = await _receive_control(codec, connection, Hello)
            if theirs.version != PROTOCOL_VERSION:
                raise HandshakeError(
                    f"protocol version mismatch: this node speaks {PROTOCOL_VERSION}, "
                    f"the peer {theirs.version}; run the same version on both sides",
                    CLOSE_PROTOCOL,
                )
            if theirs.cluster != system.cluster:
                raise HandshakeError(
                    f"cluster mismatch: this node is in {system.cluster!r}, the peer in "
                    f"{theirs.cluster!r}; pass the same cluster name to both",
                    CLOSE_CLUSTER,
                )
            if theirs.node_id == system.node_id:
                raise HandshakeError("a node cannot link to itself", CLOSE_PROTOCOL)
            if secret is None and theirs.auth:
                raise AuthenticationError(
                    "the peer requires the cluster secret: start this node with it"
                )
            if secret is not None:
                if not theirs.auth:
                    raise AuthenticationError(
                        "the peer has no cluster secret: start it with the cluster's secret"
                    )
                mac = _proof(secret, theirs.nonce, nonce, system.node_id)
                await connection.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, Proof(mac))]))
                proof: Proof = await _receive_control(codec, connection, Proof)
                expected = _proof(secret, nonce, theirs.nonce, theirs.node_id)
                if not hmac.compare_digest(proof.mac, expected):
                    raise AuthenticationError(
                        "authentication failed: the peer does not know the cluster secret"
                    )
            return theirs
    except trio.TooSlowError:
        await connection.close(CLOSE_PROTOCOL, "handshake timed out")
        raise HandshakeError("handshake timed out", CLOSE_PROTOCOL) from None
    except HandshakeError as exc:
        await connection.close(exc.code, str(exc))
        raise
    except LinkClosed as exc:
        if exc.code == CLOSE_AUTH:
            raise AuthenticationError(f"refused by the peer: {exc.reason}") from None
        if 4000 <= exc.code < 5000:
            raise HandshakeError(f"refused by the peer: {exc.reason}", exc.code) from None
        raise
