"""ControlPlaneSettings: every option of ``open_control_plane`` as one frozen record."""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

import actors

from ._serialization import DEFAULT_MAX_PAYLOAD

if TYPE_CHECKING:
    from ._dashboard import DashboardConfig
    from ._registry import Registry


@attrs.frozen(kw_only=True)
class ControlPlaneSettings:
    """The options of ``open_control_plane`` (all but ``tasks``), as one value.

    Build it once (from a config file, say) and pass it whole:
    ``open_control_plane(tasks, settings=settings)``; ``attrs.evolve(settings, port=0)``
    changes one field. The fields, their defaults and their meaning are those of
    ``open_control_plane``'s keyword arguments.
    """

    host: str = "127.0.0.1"
    port: int = 0
    cluster: str = "default"
    secret: str | bytes | None = None
    result_cache_size: int = 10_000
    result_ttl: float = 3600.0
    max_queue: int = 100_000
    local_concurrency: int = 4
    journal: str | None = None
    discovery: bool = True
    url: str | None = None
    registry: Registry | None = None
    result_cache_bytes: int = 256 * 1024 * 1024
    aging: float | None = 60.0
    cancel_timeout: float = 5.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_worker_losses: int = 2
    sync_tasks_in_threads: bool = True
    ssl_context: ssl.SSLContext | None = None
    allow_unauthenticated_remote: bool = False
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT
    broadcast_address: str = actors.DEFAULT_BROADCAST_ADDRESS
    beacon_interval: float = 1.0
    link: actors.LinkConfig | None = None
    start_time: float | datetime | None = None
    journal_compact_interval: float = 60.0
    dashboard: str | bool | DashboardConfig | None = None
    dashboard_token: str | None = None
