"""The control plane node: an actor system with the registration actor, control plane, scheduler,
result cache and local executor, listening for subworkers and clients, announcing
itself by UDP beacon.

``open_control_plane`` settles its options into a ControlPlaneSettings and assembles
the node here; the checks and the journal replay it runs once at start are in
``_control_plane_startup``, and the handle it yields (``ControlPlaneNode``: statistics,
drain, abandon) is in ``_control_plane_handle``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import trio

import actors

from . import _names as names
from ._clock import WallClock
from ._control_plane import LOCAL_WORKER, ControlPlane, ControlPlaneConfig
from ._control_plane_handle import ControlPlaneNode
from ._control_plane_startup import check_settings, replay_journal
from ._dashboard import ControlPlaneHost, DashboardConfig, dashboard_config, serve_dashboard
from ._executor import Executor
from ._journal import open_journal_file
from ._messages import Outcome
from ._node import node_config, run_blocking, secret_bytes
from ._protocol import WorkerCompleted, WorkerJoined
from ._registration import Registration
from ._registry import Registry, default_registry, import_task_modules
from ._result_cache import DirectCacheRef, ResultCache, ResultStore
from ._scheduler import Scheduler
from ._serialization import DEFAULT_MAX_PAYLOAD
from ._settings import ControlPlaneSettings
from ._settle import settle
from ._wire import Sender, drop_outcome_value, outcome_size

log = logging.getLogger("fastworker.control_plane")


ROLE = names.ROLE_CONTROL_PLANE
DEFAULT_PORT = 8765


def _local_completed(outcomes: list[Outcome], last: bool, credits: int) -> WorkerCompleted:
    return WorkerCompleted(LOCAL_WORKER, outcomes, credits if last else 0)


def local_reporter(
    control_plane: actors.ActorRef, nursery: trio.Nursery
) -> Callable[[list[Outcome], int], None]:
    """The in-process executor's ``report``: WorkerCompleted to the control plane.

    Sent at once while its mailbox has room, else (in order) as soon as it has: a full
    mailbox must not lose outcomes, which would hold their tasks and slots for ever.
    """
    sender: Sender[Outcome] = Sender(
        "local outcomes", _local_completed, outcome_size, drop_outcome_value, budget=None
    )
    sender.start(nursery)

    def report(outcomes: list[Outcome], credits: int) -> None:
        sender.send_nowait(control_plane, outcomes, credits)

    return report


@asynccontextmanager
async def open_control_plane(
    tasks: Iterable[str] | str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cluster: str = "default",
    secret: str | bytes | None = None,
    result_cache_size: int = 10_000,
    result_ttl: float = 3600.0,
    max_queue: int = 100_000,
    local_concurrency: int = 4,
    journal: str | None = None,
    discovery: bool = True,
    url: str | None = None,
    registry: Registry | None = None,
    result_cache_bytes: int = 256 * 1024 * 1024,
    aging: float | None = 60.0,
    cancel_timeout: float = 5.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    max_worker_losses: int = 2,
    sync_tasks_in_threads: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    allow_unauthenticated_remote: bool = False,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
    broadcast_address: str = actors.DEFAULT_BROADCAST_ADDRESS,
    beacon_interval: float = 1.0,
    link: actors.LinkConfig | None = None,
    start_time: float | datetime | None = None,
    journal_compact_interval: float = 60.0,
    dashboard: str | bool | DashboardConfig | None = None,
    dashboard_token: str | None = None,
    settings: ControlPlaneSettings | None = None,
) -> AsyncIterator[ControlPlaneNode]:
    """Run a control plane for the duration of the block (embedding in a trio app).

    It listens on ``ws://host:port`` (port 0 picks a free one; ``url`` may instead name
    any listen URL, e.g. ``memory://cp`` for the in-memory transport), announces itself
    by UDP beacon when ``discovery`` is on, and runs tasks itself with
    ``local_concurrency`` slots while no subworker is connected (0: never). Leaving the
    block stops everything at once; call ``node.drain()`` first for a graceful stop.

    ``journal`` (a file path) makes accepted tasks durable (see the Journal); every
    ``journal_compact_interval`` seconds it drops results past ``result_ttl``;
    ``cancel_timeout`` bounds how long a cancel waits for a running task to confirm;
    ``aging`` is how many seconds of waiting promote a queued task one priority level;
    a task in flight on ``max_worker_losses`` lost workers (the last time alone on its
    worker) fails with WorkerLost instead of being redelivered again.

    ``dashboard`` serves the dashboard, HTTP API and metrics: ``"HOST:PORT"`` (must be
    free; port 0 picks one), ``True`` for the default ``127.0.0.1:8766`` (skipped with a
    warning when taken), None for none; ``node.dashboard_url`` says where.
    ``dashboard_token`` makes every HTTP request need ``Authorization: Bearer <token>``
    (required off loopback).

    Every option after ``tasks`` is keyword-only. ``settings`` (a ControlPlaneSettings)
    gives them all as one value instead; then no other option may be passed.

    Raises:
        ConfigurationError: ``settings`` together with other options, bad limits, an
            empty secret, a non-loopback ``host`` without a secret (unless
            ``allow_unauthenticated_remote``), an unsafe or taken explicit dashboard
            address, or an unusable ``journal`` (missing or
            read-only directory, a foreign or corrupt file).
        TaskModuleError: a module of ``tasks`` could not be imported.
        OSError: the listen address cannot be bound (the port is taken, say).
    """
    options = {k: v for k, v in locals().items() if k not in ("tasks", "settings")}
    settings = settle(ControlPlaneSettings, settings, options, "open_control_plane")
    async with _open_control_plane(tasks, settings) as node:
        yield node


@asynccontextmanager
async def _open_control_plane(
    tasks: Iterable[str] | str | None, s: ControlPlaneSettings
) -> AsyncIterator[ControlPlaneNode]:
    """open_control_plane's body, once its options are settled.

    Raises:
        ConfigurationError: as ``open_control_plane`` (see there).
    """
    dashboard_settings = dashboard_config(s.dashboard, s.dashboard_token)
    secret_key = secret_bytes(s.secret)
    listen_url = check_settings(s, secret_key)
    import_task_modules(tasks)
    registry = s.registry if s.registry is not None else default_registry
    clock = WallClock(s.start_time)
    system_config = node_config(
        cluster=s.cluster, role=ROLE, secret=secret_key, link=s.link, max_payload=s.max_payload
    )
    capacity = s.max_queue * 2 + 10_000
    journal_file = None
    if s.journal is not None:
        journal_file = await run_blocking(s.sync_tasks_in_threads, open_journal_file, s.journal)
    try:
        async with actors.open_actor_system(system_config) as system:
            store = ResultStore(s.result_cache_size, s.result_ttl, s.result_cache_bytes)
            cache = ResultCache(store)
            cache_ref = await system.spawn(names.RESULT_CACHE, cache, capacity=capacity)
            core = ControlPlane(
                registry,
                DirectCacheRef(cache, cache_ref),
                clock,
                ControlPlaneConfig(
                    s.max_queue,
                    s.aging,
                    cancel_timeout=s.cancel_timeout,
                    max_payload=s.max_payload,
                    result_ttl=s.result_ttl,
                    max_worker_losses=s.max_worker_losses,
                ),
            )
            core_ref = await system.spawn(names.CONTROL_PLANE, core, capacity=capacity)
            scheduler = Scheduler(core_ref, registry.periodic(), clock)
            core.scheduler = await system.spawn(names.SCHEDULER, scheduler, capacity=capacity)
            journal_actor = None
            if journal_file is not None:
                journal_actor = await replay_journal(
                    system, s, journal_file, core, core_ref, cache_ref, clock, capacity
                )
            registration = Registration(core_ref, cache_ref, registry)
            await system.spawn(names.REGISTRATION, registration)
            executor = None
            if s.local_concurrency:
                executor = Executor(
                    registry,
                    s.local_concurrency,
                    local_reporter(core_ref, system.nursery),
                    LOCAL_WORKER,
                    max_result_size=s.max_payload,
                    clock=clock.now,
                    threads=s.sync_tasks_in_threads,
                )
                executor_ref = await system.spawn(names.EXECUTOR, executor, capacity=capacity)
                await core_ref.tell(
                    WorkerJoined(
                        LOCAL_WORKER,
                        executor_ref,
                        s.local_concurrency,
                        local=True,
                        tasks=registry.names(),
                        infos=registry.infos(),
                    )
                )
            public_url = await system.listen(listen_url, ssl_context=s.ssl_context)
            node = ControlPlaneNode(
                public_url, system, core, cache, scheduler, registry, clock, executor, journal_actor
            )
            if s.discovery and not public_url.startswith("memory:"):
                config = actors.DiscoveryConfig(
                    cluster=s.cluster,
                    port=s.discovery_port,
                    broadcast_address=s.broadcast_address,
                    interval=s.beacon_interval,
                    secret=secret_key,
                )
                await system.nursery.start(_beacon, config, system.node_id, public_url)
            if dashboard_settings is not None:
                host: ControlPlaneHost = node  # what the dashboard needs (checked by mypy)
                node.dashboard_url = await system.nursery.start(
                    serve_dashboard, host, dashboard_settings, s.cluster, s.max_payload
                )
            log.info(
                "control plane %s listening at %s (cluster %r, tasks: %s)",
                system.node_id[:8],
                public_url,
                s.cluster,
                ", ".join(registry.names()) or "none",
            )
            yield node
    finally:
        if journal_file is not None:
            journal_file.close()


async def _beacon(
    config: actors.DiscoveryConfig, node_id: str, url: str, *, task_status: Any
) -> None:
    await actors.run_beacon(
        config,
        node_id=node_id,
        role=ROLE,
        url=url,
        protocol_version=actors.PROTOCOL_VERSION,
        task_status=task_status,
    )


async def run_control_plane(*, task_status: Any = trio.TASK_STATUS_IGNORED, **options: Any) -> None:
    """``open_control_plane`` for ``nursery.start``: reports the node, runs until cancelled.

    Raises:
        ConfigurationError, TaskModuleError, OSError: as ``open_control_plane``, from
            ``nursery.start``.
    """
    async with open_control_plane(**options) as node:
        task_status.started(node)
        await trio.sleep_forever()
