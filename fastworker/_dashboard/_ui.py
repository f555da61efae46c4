"""The page's routes: ``/`` (overview and recent tasks), ``/tasks/{id}``, ``/ui/stream``.

The HTML is ``_page``'s; the live stream sends the changes of the ring and the shared
statistics snapshot, coalesced, at most one update per ``PAGE_INTERVAL``.
"""

from __future__ import annotations

import json
import time

import trio
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from . import _page
from ._backend import Backend
from ._shapes import arguments_preview, summary_json
from ._sse import KEEPALIVE, SendText, SSEResponse

PAGE_INTERVAL = 0.5
"""The page's live stream sends at most one update per this many seconds."""


class PageRoutes:
    """The handlers of the page."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def index(self, request: Request) -> Response:
        """GET / (``?status=`` and ``?name=`` filter the recent tasks)."""
        backend = self.backend
        ring = backend.ring
        status = request.query_params.get("status") or ""
        name = request.query_params.get("name") or ""
        html = _page.render_index(
            cluster=backend.cluster,
            url=backend.host.url,
            stats=(await backend.snapshot())[0],
            schedules=await backend.schedules(),
            tasks=[summary_json(s) for s in ring.recent(status=status, name=name)],
            ring=ring.statistics(),
            since=ring.change_count,
            status=status,
            name=name,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def task_page(self, request: Request) -> Response:
        """GET /tasks/{id}: one task's detail."""
        backend = self.backend
        task_id = request.path_params["task_id"]
        found, info = await backend.task_detail(task_id)
        summary = backend.ring.get(task_id)
        payload = summary.payload if summary is not None else None
        if payload is None and info is not None:
            payload = info["payload"]
        html = _page.render_task(
            cluster=backend.cluster,
            task_id=task_id,
            task=found,
            summary=summary_json(summary) if summary is not None else None,
            arguments=arguments_preview(payload)
            if payload is not None
            else (
                f"({summary.too_big} bytes packed: not kept)" if summary and summary.too_big else ""
            ),
            value=json.dumps(found["value"], default=repr)[:4000] if found else "",
        )
        return HTMLResponse(
            html, status_code=200 if found else 404, headers={"Cache-Control": "no-store"}
        )

    async def page_stream(self, request: Request) -> Response:
        """GET /ui/stream?since=N: the page's live updates, coalesced, at most 2 per second."""
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            since = 0
        backend = self.backend
        ring = backend.ring
        hub = backend.hub

        async def produce(send: SendText) -> None:
            seen = min(since, ring.change_count) if since > 0 else ring.change_count
            await send("retry: 2000\n\n")
            version = -1
            while True:
                last = backend.last_snapshot
                fresh = last is not None and last.version >= version
                if version == hub.version and fresh:
                    # Nothing new, and the statistics shown already include the last
                    # change (else one more update follows with fresher ones).
                    with trio.move_on_after(KEEPALIVE):
                        await hub.wait_changed()
                version = hub.version
                stats, at = await backend.snapshot()
                began = time.thread_time()
                seen, changed = ring.changed_since(seen, 100)
                update = {
                    "at": at,
                    "stats": stats,
                    "tasks": [summary_json(s) for s in changed],
                    "ring": ring.statistics(),
                }
                text = "data: " + json.dumps(update, default=repr) + "\n\n"
                hub.cpu_seconds += time.thread_time() - began
                await send(text)
                await trio.sleep(PAGE_INTERVAL)

        return SSEResponse(produce)
