"""A hand-driven link client: speaks the actors link protocol frame by frame.

Used by the tests of hostile peers (tests/actors/test_link_websocket.py, tests/security):
it says hello with whatever fields a test wants, sends envelopes a real node never
would, and reads what the server answers, over trio-websocket with ``actors.Codec``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio_websocket
from trio_websocket import CloseReason, ConnectionClosed

from actors import PROTOCOL_VERSION, Codec, Hello, Kind

CONNECT_TIMEOUT = 10.0
MiB = 1024 * 1024


def make_hello(**changes: Any) -> Hello:
    """A valid hello from a hand-driven client, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "node_id": "raw-" + secrets.token_hex(8),
        "role": "raw",
        "cluster": "default",
        "version": PROTOCOL_VERSION,
        "nonce": secrets.token_bytes(16),
        "auth": False,
    }
    fields.update(changes)
    return Hello(**fields)


class RawClient:
    """A hand-driven link client over trio-websocket: frames in, frames out."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.codec = Codec()
        self.server_hello: Hello | None = None

    async def send(self, frame: bytes | str) -> None:
        """Send one raw websocket message."""
        await self.ws.send_message(frame)

    async def send_envelope(
        self, kind: int, to: str, corr: int, message: Any, sender: str | None = None
    ) -> None:
        """Send one envelope as a frame."""
        await self.send(self.codec.encode_frame([(kind, to, sender, corr, message)]))

    async def receive_envelope(self) -> list[Any]:
        """The next envelope from the server that is not a heartbeat ping."""
        while True:
            for envelope in Codec.decode_frame(await self.ws.get_message()):  # type: ignore[arg-type]
                if envelope[4] != "actors.Ping":
                    return envelope

    async def receive_control(self, expected: type) -> Any:
        """The next non-ping envelope, which must be a control message of ``expected`` type."""
        envelope = await self.receive_envelope()
        assert envelope[0] == Kind.CONTROL, envelope
        message = self.codec.structure(envelope[4], envelope[5])
        assert isinstance(message, expected), message
        return message

    async def handshake(self, **changes: Any) -> Hello:
        """Read the server's hello and send ours (no proof); return the hello we sent."""
        self.server_hello = await self.receive_control(Hello)
        mine = make_hello(**changes)
        await self.send_envelope(Kind.CONTROL, "", 0, mine)
        return mine

    async def closed(self) -> CloseReason:
        """Read (and ignore) frames until the server closes; return its close reason."""
        try:
            while True:
                await self.ws.get_message()
        except ConnectionClosed as exc:
            assert exc.reason is not None
            return exc.reason


@asynccontextmanager
async def raw_client(
    url: str, *, max_message_size: int = 16 * MiB, disconnect_timeout: float = CONNECT_TIMEOUT
) -> AsyncIterator[RawClient]:
    """Open a raw websocket to the server, with room for ``max_message_size`` frames from
    it (our own frames are not limited: large enough to send oversized ones)."""
    async with trio_websocket.open_websocket_url(
        url,
        max_message_size=max_message_size,
        connect_timeout=CONNECT_TIMEOUT,
        disconnect_timeout=disconnect_timeout,
    ) as ws:
        yield RawClient(ws)
