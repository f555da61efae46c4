"""The dashboard's ASGI app (starlette): the route table, behind the access guard.

The handlers are grouped by story: the page (``_ui``), the task API (``_api_tasks``),
the live statistics, events and metrics (``_api_live``); all read through one
``Backend`` (``_backend``). The app runs in the control plane's process and trio loop.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from ._api_live import LiveRoutes
from ._api_tasks import TaskRoutes
from ._backend import Backend
from ._guard import Guard
from ._host import ControlPlaneHost
from ._hub import Hub
from ._ui import PageRoutes


class DashboardApp:
    """Routes and handlers; ``asgi`` is the app to serve (with the access guard)."""

    def __init__(
        self,
        host: ControlPlaneHost,
        hub: Hub,
        *,
        token: str | None,
        allowed_hosts: frozenset[str] | None,
        cluster: str,
        max_payload: int,
    ) -> None:
        self.backend = Backend(host, hub, cluster=cluster, max_payload=max_payload)
        page = PageRoutes(self.backend)
        tasks = TaskRoutes(self.backend)
        live = LiveRoutes(self.backend)
        # In this order: a task id may contain "/" ({task_id:path}), so ".../retry"
        # comes before the routes of the task itself.
        routes = [
            Route("/", page.index),
            Route("/tasks/{task_id:path}", page.task_page),
            Route("/ui/stream", page.page_stream),
            Route("/metrics", live.metrics),
            Route("/api/v1/tasks", tasks.submit, methods=["POST"]),
            Route("/api/v1/tasks", tasks.list_tasks, methods=["GET"]),
            Route("/api/v1/stats", live.stats),
            Route("/api/v1/events", live.events),
            Route("/api/v1/tasks/{task_id:path}/retry", tasks.retry, methods=["POST"]),
            Route("/api/v1/tasks/{task_id:path}", tasks.read, methods=["GET"]),
            Route("/api/v1/tasks/{task_id:path}", tasks.cancel, methods=["DELETE"]),
        ]
        self.asgi: ASGIApp = Guard(Starlette(routes=routes), token, allowed_hosts)
