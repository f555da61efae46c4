"""Server-sent events over ASGI, ended with the connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

KEEPALIVE = 15.0
"""Seconds of silence after which a stream sends a comment line (proxies stay open)."""

SendText = Callable[[str], Awaitable[None]]
"""Writes one chunk of the event stream."""


class SSEResponse(Response):
    """Server-sent events written by ``produce(send_text)`` until the client leaves.

    The producer runs beside a task that watches for the disconnect; either ending
    ends both, so nothing outlives the connection.
    """

    media_type = "text/event-stream"

    def __init__(self, produce: Callable[[SendText], Awaitable[None]]):
        self.produce = produce
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def send_text(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch_disconnect)
            try:
                await self.produce(send_text)
            except OSError:
                pass
            nursery.cancel_scope.cancel()
