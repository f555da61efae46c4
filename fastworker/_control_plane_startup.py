"""What the control plane node does once, at start: check its settings, and replay its
journal (results into the cache, workflows and unfinished tasks into the control plane).
The node itself is assembled in ``_control_plane_node``."""

from __future__ import annotations

import logging
from typing import Any

import actors

from . import _names as names
from ._clock import WallClock
from ._control_plane import ControlPlane
from ._errors import ConfigurationError
from ._journal import Journal, JournalFile
from ._node import is_loopback, run_blocking
from ._protocol import JournaledFlow, Restore, RestoreFlows, Store
from ._settings import ControlPlaneSettings

log = logging.getLogger("fastworker.control_plane")


def check_settings(s: ControlPlaneSettings, secret_key: bytes | None) -> str:
    """The URL to listen on, once the settings are checked.

    Raises:
        ConfigurationError: a non-loopback ``host`` without a secret (unless
            ``allow_unauthenticated_remote``), or a limit out of range (the message
            names it).
    """
    if s.url is None:
        if secret_key is None and not is_loopback(s.host) and not s.allow_unauthenticated_remote:
            raise ConfigurationError(
                f"refusing to listen on {s.host} without a cluster secret: anyone who can reach "
                "it could submit tasks or register as a worker. Set a secret (--secret-file), "
                "bind 127.0.0.1, or pass allow_unauthenticated_remote=True "
                "(--insecure-allow-unauthenticated) if you really mean it"
            )
        scheme = "wss" if s.ssl_context is not None else "ws"
        url = f"{scheme}://{s.host}:{s.port}"
    else:
        url = s.url
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
    return url


async def replay_journal(
    system: actors.ActorSystem,
    s: ControlPlaneSettings,
    journal_file: JournalFile,
    core: ControlPlane,
    core_ref: actors.ActorRef,
    cache_ref: actors.ActorRef,
    clock: WallClock,
    capacity: int,
) -> Journal:
    """Spawn the journal actor, and hand what the file holds to the running actors:
    unexpired results to the result cache, workflows and unfinished tasks to the
    control plane. Returns the journal actor."""
    threads = s.sync_tasks_in_threads
    unfinished, results = await run_blocking(
        threads, journal_file.load, clock.now(), s.result_cache_size
    )
    known = await run_blocking(threads, journal_file.catalogue)
    if results:
        await cache_ref.ask(Store(results))
    journal_actor = Journal(
        journal_file, s.result_ttl, clock.now, s.journal_compact_interval, threads=threads
    )
    core.journal = await system.spawn(names.JOURNAL, journal_actor, capacity=capacity)
    unfinished = await _restore_workflows(core_ref, journal_file, unfinished, threads)
    if unfinished or results or known:
        await core_ref.ask(Restore(unfinished, [o.id for o in results], known))
    log.info(
        "journal %s: replayed %d unfinished tasks and %d results",
        journal_file.path,
        len(unfinished),
        len(results),
    )
    return journal_actor


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
