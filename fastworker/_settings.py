"""Settings records: every option of ``open_control_plane`` (ControlPlaneSettings) and of
``open_subworker`` (SubworkerSettings) as one frozen value."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

import actors

from ._serialization import DEFAULT_MAX_PAYLOAD
from ._settle import hidden
from ._watchdog import DEFAULT_THRESHOLD

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
    secret: str | bytes | None = attrs.field(default=None, repr=hidden)
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
    dashboard_token: str | None = attrs.field(default=None, repr=hidden)


@attrs.frozen(kw_only=True)
class SubworkerSettings:
    """The options of ``open_subworker`` (all but ``tasks``), as one value.

    Build it once and pass it whole: ``open_subworker(tasks=tasks, settings=settings)``;
    ``attrs.evolve(settings, url=url)`` changes one field. The fields, their defaults
    and their meaning are those of ``open_subworker``'s options (``url`` included).
    """

    url: str | None = None
    concurrency: int = 8
    cluster: str = "default"
    secret: str | bytes | None = attrs.field(default=None, repr=hidden)
    registry: Registry | None = None
    max_payload: int = DEFAULT_MAX_PAYLOAD
    ssl_context: ssl.SSLContext | None = None
    link: actors.LinkConfig | None = None
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT
    clock: Callable[[], float] | None = None
    sync_tasks_in_threads: bool = True
    loop_watchdog: float | None = DEFAULT_THRESHOLD
    queues: Iterable[str] | str | None = None
    prefetch: int | None = None
