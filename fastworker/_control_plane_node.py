"""The control plane node: an actor system with the registration actor, control plane, scheduler,
result cache and local executor, listening for subworkers and clients, announcing
itself by UDP beacon.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import attrs
import trio

import actors

from . import _names as names
from ._clock import WallClock
from ._control_plane import LOCAL_WORKER, ControlPlane, ControlPlaneConfig
from ._dashboard import ControlPlaneHost, DashboardConfig, dashboard_config, serve_dashboard
from ._errors import ConfigurationError
from ._executor import Executor
from ._journal import Journal, open_journal_file
from ._messages import Drain, Outcome
from ._node import node_config, run_blocking, secret_bytes
from ._protocol import (
    Abandon,
    BeginDrain,
    GetCacheStatistics,
    GetClusterStats,
    JournaledFlow,
    NextFireTimes,
    Restore,
    RestoreFlows,
    Store,
    Sync,
    WaitIdle,
    WorkerCompleted,
    WorkerJoined,
)
from ._records import ClusterStats, stats_from_wire
from ._registration import Registration
from ._registry import Registry, default_registry, import_task_modules
from ._result_cache import DirectCacheRef, ResultCache, ResultStore
from ._scheduler import Scheduler
from ._serialization import DEFAULT_MAX_PAYLOAD
from ._settings import ControlPlaneSettings

log = logging.getLogger("fastworker.control_plane")


ROLE = names.ROLE_CONTROL_PLANE
DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@attrs.define
class ControlPlaneNode:
    """A running control plane (from ``open_control_plane``).

    ``url`` is where subworkers and clients connect. ``control_plane``, ``cache``,
    ``scheduler`` and ``journal`` (None without one) are the actor instances, for
    inspection in tests.
    """

    url: str
    system: actors.ActorSystem
    control_plane: ControlPlane
    cache: ResultCache
    scheduler: Scheduler
    registry: Registry
    clock: WallClock
    executor: Executor | None = None
    journal: Journal | None = None
    dashboard_url: str | None = None
    """``http://host:port`` of the dashboard and HTTP API, or None without one."""

    @property
    def node_id(self) -> str:
        """This node's uuid."""
        return self.system.node_id

    async def statistics(self) -> ClusterStats:
        """A snapshot of queues, workers and counters (what ``Client.stats()`` answers)."""
        cached = (await self.system.ref(names.RESULT_CACHE).ask(GetCacheStatistics())).entries
        wire = await self.system.ref(names.CONTROL_PLANE).ask(GetClusterStats(cached))
        return stats_from_wire(wire)

    async def next_fire_times(self) -> dict[str, float]:
        """Next wall-clock fire time of each periodic task."""
        times: dict[str, float] = await self.system.ref(names.SCHEDULER).ask(NextFireTimes())
        return times

    async def drain(self) -> None:
        """Refuse new work and wait until running tasks finished (caller owns the timeout).

        Their outcomes are in the result cache (and pushed to watchers) when this returns,
        and with a journal also on disk (a restart does not run them again). Queued tasks
        that never started stay queued (without a journal they are lost when the process
        exits; a warning says how many).
        """
        core = self.system.ref(names.CONTROL_PLANE)
        await self.system.ref(names.REGISTRATION).ask(BeginDrain())
        await core.ask(BeginDrain())
        if self.executor is not None:
            await self.system.ref(names.EXECUTOR).ask(Drain())
        await core.ask(WaitIdle())
        # The last outcomes were told to the journal before WaitIdle was answered.
        if self.journal is not None:
            try:
                await self.system.ref(names.JOURNAL).ask(Sync())
            except actors.ActorError as exc:
                log.error("draining: the journal could not write the last outcomes: %s", exc)
        stats = await self.statistics()
        left = stats.queued.critical + stats.queued.high + stats.queued.normal + stats.queued.low
        if left or stats.scheduled:
            log.warning(
                "draining: %d queued and %d scheduled tasks were not started (%s)",
                left,
                stats.scheduled,
                "the journal keeps them for the next start"
                if self.journal is not None
                else "no journal: they are lost when the process exits",
            )

    async def abandon(self, reason: str) -> tuple[int, int]:
        """After a drain ran out of time: end every unfinished task and say so.

        Without a journal, running tasks fail with WorkerLost and tasks that never
        started with ShuttingDown, and clients waiting on them are told (this waits up
        to a second for those results to leave); with a journal they stay on disk for
        the next start. Logs what was lost.

        Args:
            reason: why, for the log and the tasks' error messages.

        Returns:
            (running, waiting): how many tasks were running, and how many never started.
        """
        running, waiting = await self.system.ref(names.CONTROL_PLANE).ask(Abandon(reason))
        if self.journal is not None:
            if running or waiting:
                log.warning(
                    "%s: %d running tasks were interrupted and %d never started; the journal "
                    "keeps them: they run again at the next start",
                    reason,
                    running,
                    waiting,
                )
            return running, waiting
        if running or waiting:
            log.error(
                "%s: %d running tasks were killed and %d waiting tasks dropped (no journal: "
                "they are lost; clients waiting on them get WorkerLost / ShuttingDown)",
                reason,
                running,
                waiting,
            )
        # The failures reach the cache (which pushes them to watchers) before this answers.
        await self.system.ref(names.RESULT_CACHE).ask(GetCacheStatistics())
        with trio.move_on_after(1.0):
            for peer in list(self.system.peers().values()):
                link = peer.link
                if link is not None:
                    await link.wait_outbox_taken()
        return running, waiting


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
    if settings is not None:
        defaults = attrs.asdict(ControlPlaneSettings(), recurse=False)
        passed = sorted(k for k, v in options.items() if v is not defaults[k] and v != defaults[k])
        if passed:
            raise ConfigurationError(
                f"open_control_plane got settings= and {', '.join(passed)}: put them in the "
                "settings (attrs.evolve(settings, ...)) or pass no settings"
            )
    else:
        settings = ControlPlaneSettings(**options)
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
    if s.url is None:
        if secret_key is None and not _is_loopback(s.host) and not s.allow_unauthenticated_remote:
            raise ConfigurationError(
                f"refusing to listen on {s.host} without a cluster secret: anyone who can reach "
                "it could submit tasks or register as a worker. Set a secret (--secret-file), "
                "bind 127.0.0.1, or pass allow_unauthenticated_remote=True "
                "(--insecure-allow-unauthenticated) if you really mean it"
            )
        scheme = "wss" if s.ssl_context is not None else "ws"
        listen_url = f"{scheme}://{s.host}:{s.port}"
    else:
        listen_url = s.url
    for label, value in (("result_cache_size", s.result_cache_size), ("max_queue", s.max_queue)):
        if value < 1:
            raise ConfigurationError(f"{label} must be at least 1, got {value}")
    if s.max_worker_losses < 1:
        raise ConfigurationError(f"max_worker_losses must be >= 1, got {s.max_worker_losses}")
    if s.local_concurrency < 0:
        raise ConfigurationError(f"local_concurrency must be >= 0, got {s.local_concurrency}")
    if s.result_ttl <= 0:
        raise ConfigurationError(f"result_ttl must be > 0, got {s.result_ttl}")
    if s.journal_compact_interval <= 0:
        raise ConfigurationError(
            f"journal_compact_interval must be > 0, got {s.journal_compact_interval}"
        )
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
                unfinished, results = await run_blocking(
                    s.sync_tasks_in_threads, journal_file.load, clock.now(), s.result_cache_size
                )
                known = await run_blocking(s.sync_tasks_in_threads, journal_file.catalogue)
                if results:
                    await cache_ref.ask(Store(results))
                journal_actor = Journal(
                    journal_file,
                    s.result_ttl,
                    clock.now,
                    s.journal_compact_interval,
                    threads=s.sync_tasks_in_threads,
                )
                core.journal = await system.spawn(names.JOURNAL, journal_actor, capacity=capacity)
                unfinished = await _restore_workflows(
                    core_ref, journal_file, unfinished, s.sync_tasks_in_threads
                )
                if unfinished or results or known:
                    await core_ref.ask(Restore(unfinished, [o.id for o in results], known))
                log.info(
                    "journal %s: replayed %d unfinished tasks and %d results",
                    journal_file.path,
                    len(unfinished),
                    len(results),
                )
            registration = Registration(core_ref, cache_ref, registry)
            await system.spawn(names.REGISTRATION, registration)
            executor = None
            if s.local_concurrency:

                def report(outcomes: list[Outcome], credits: int) -> None:
                    core_ref.tell_nowait(WorkerCompleted(LOCAL_WORKER, outcomes, credits))

                executor = Executor(
                    registry,
                    s.local_concurrency,
                    report,
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


async def _restore_workflows(
    core: actors.ActorRef,
    journal_file: Any,
    unfinished: list[Any],
    threads: bool,
) -> list[Any]:
    """Replay the journal's workflows; returns the unfinished tasks that are not members."""
    rows = await run_blocking(threads, journal_file.load_workflows)
    if not rows:
        return unfinished
    flows = {flow_id: JournaledFlow(flow_id, nodes, results) for flow_id, nodes, results in rows}
    rest = []
    for task in unfinished:
        flow = flows.get(task.id.rpartition(":")[0])
        if flow is not None:
            flow.tasks.append(task)
        else:
            rest.append(task)
    await core.ask(RestoreFlows(list(flows.values())))
    log.info("journal: replayed %d unfinished workflows", len(flows))
    return rest


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
