"""The cluster as it runs: ``/api/v1/stats``, ``/api/v1/events`` (SSE) and ``/metrics``."""

from __future__ import annotations

import json

import attrs
import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._protocol import GetCacheStatistics
from . import _metrics
from ._backend import Backend
from ._shapes import event_json
from ._sse import KEEPALIVE, SendText, SSEResponse


class LiveRoutes:
    """The handlers of the statistics, the event stream and the metrics."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def stats(self, request: Request) -> Response:
        """GET /api/v1/stats"""
        return JSONResponse(attrs.asdict(await self.backend.host.statistics()))

    async def events(self, request: Request) -> Response:
        """GET /api/v1/events: one SSE ``data:`` line per task or worker event."""
        hub = self.backend.hub

        async def produce(send: SendText) -> None:
            stream = await hub.open_stream()
            try:
                await send("retry: 2000\n: connected\n\n")
                while True:
                    batch = None
                    with trio.move_on_after(KEEPALIVE):
                        batch = await stream.receive.receive()
                    if batch is None:
                        await send(": keep-alive\n\n")
                        continue
                    parts = []
                    if stream.dropped:
                        lost, stream.dropped = stream.dropped, 0
                        parts.append(
                            "data: " + json.dumps({"kind": "dropped", "count": lost}) + "\n\n"
                        )
                    parts += ["data: " + json.dumps(event_json(e)) + "\n\n" for e in batch]
                    await send("".join(parts))
            finally:
                hub.close_stream(stream)

        return SSEResponse(produce)

    async def metrics(self, request: Request) -> Response:
        """GET /metrics"""
        backend = self.backend
        hub = backend.hub
        stats = attrs.asdict(await backend.host.statistics())
        cache = await backend.cache.ask(GetCacheStatistics())
        journal = hub.journal_commits if backend.host.journal is not None else None
        body = _metrics.render(
            _metrics.collect(stats, cache, backend.ring, journal, hub.cpu_seconds)
        )
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
