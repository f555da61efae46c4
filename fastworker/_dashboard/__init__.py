"""The built-in dashboard: the page, the HTTP API (``/api/v1``) and ``/metrics``.

It runs inside the control plane's process and nursery (hypercorn's trio worker and a
starlette app), fed by an observer actor (``Hub``) that keeps a bounded ring of recent
task summaries (``RecentTasks``).
"""

from ._hub import Hub
from ._json import from_json, to_json
from ._ring import (
    DEFAULT_KEEP_ARGUMENTS,
    DEFAULT_RECENT_BYTES,
    DEFAULT_RECENT_TASKS,
    RecentTasks,
    TaskSummary,
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

__all__ = [
    "DEFAULT_DASHBOARD",
    "DEFAULT_DASHBOARD_HOST",
    "DEFAULT_DASHBOARD_PORT",
    "DEFAULT_KEEP_ARGUMENTS",
    "DEFAULT_RECENT_BYTES",
    "DEFAULT_RECENT_TASKS",
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
