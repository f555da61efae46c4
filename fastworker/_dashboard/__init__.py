"""The built-in dashboard: the page, the HTTP API (``/api/v1``) and ``/metrics``.

It runs inside the control plane's process and nursery (hypercorn's trio worker and a
starlette app), fed by an observer actor (``Hub``) that keeps a bounded ring of recent
task summaries (``RecentTasks``). It knows the node it serves only as a
``ControlPlaneHost`` (``_host``): the node imports the dashboard, never the reverse.

The modules, in the order a request meets them: ``_server`` (addresses, hypercorn),
``_guard`` (token, Host and Origin rules), ``_app`` (the route table), the routes
(``_ui`` the page, ``_api_tasks`` the task API, ``_api_live`` stats, events and
metrics), ``_backend`` (reads and submits through the actors), ``_requests`` and
``_responses`` (checking input, error bodies), ``_shapes`` and ``_json`` (the JSON
shown), ``_sse`` (event streams); fed by ``_hub``, which keeps the ring (``_ring``,
``_ring_queries``, ``_summary``) and the per-name ``_counters`` of ``_metrics``.
"""

from ._host import ControlPlaneHost
from ._hub import Hub
from ._json import from_json, to_json
from ._ring import (
    DEFAULT_KEEP_ARGUMENTS,
    DEFAULT_RECENT_BYTES,
    DEFAULT_RECENT_TASKS,
    RecentTasks,
)
from ._server import (
    DEFAULT_DASHBOARD,
    DEFAULT_DASHBOARD_HOST,
    DEFAULT_DASHBOARD_PORT,
    DashboardConfig,
    dashboard_config,
    parse_address,
    serve_dashboard,
)
from ._summary import TaskSummary

__all__ = [
    "DEFAULT_DASHBOARD",
    "DEFAULT_DASHBOARD_HOST",
    "DEFAULT_DASHBOARD_PORT",
    "DEFAULT_KEEP_ARGUMENTS",
    "DEFAULT_RECENT_BYTES",
    "DEFAULT_RECENT_TASKS",
    "ControlPlaneHost",
    "DashboardConfig",
    "Hub",
    "RecentTasks",
    "TaskSummary",
    "dashboard_config",
    "from_json",
    "parse_address",
    "serve_dashboard",
    "to_json",
]
