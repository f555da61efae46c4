"""The subworker node: an executor that registers with the control plane and runs its work.

It finds the control plane by URL or by UDP beacon, registers its slots, and re-registers
after every reconnect (announcing the slots still busy with tasks from before).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

import actors

from . import _names as names
from ._discovery import discover_control_plane
from ._errors import AuthenticationFailed, ConfigurationError, ConnectionFailed
from ._executor import Executor
from ._messages import Completed, Drain, Outcome, RegisterWorker, Retire, Run
from ._node import node_config, secret_bytes
from ._registry import Registry, default_registry, import_task_modules
from ._serialization import DEFAULT_MAX_PAYLOAD
from ._settings import SubworkerSettings
from ._settle import settle
from ._tls import check_tls
from ._watchdog import DEFAULT_THRESHOLD, LoopWatchdog
from ._wire import Sender, drop_outcome_value, outcome_size

log = logging.getLogger("fastworker.subworker")

ROLE = names.ROLE_SUBWORKER


class Outlet:
    """Where the executor's outcomes and given-back attempts go: the control plane's
    connection actor for this worker once registered (``target``), nowhere before.

    Made before the executor (which reports through it) and kept by the node, which
    points it at the control plane on each registration.
    """

    __slots__ = ("sender", "target")

    def __init__(self) -> None:
        self.target: actors.ActorRef | None = None
        self.sender: Sender[Outcome] = _outcome_sender()

    def report(self, outcomes: list[Outcome], credits: int) -> None:
        """Send outcomes and freed slots to the control plane (never blocks)."""
        target = self.target
        if target is None:
            if outcomes:
                log.warning(
                    "%d outcomes not reported: not registered with the control plane "
                    "(it redelivers what this worker held when the link dropped)",
                    len(outcomes),
                )
            return
        # Split to fit the link's frames; what finds the link's outbox full is sent in
        # order as soon as there is room; a result too big for the link becomes that
        # task's PayloadTooLarge failure.
        self.sender.send_nowait(target, outcomes, credits)

    def give_back(self, runs: list[Run]) -> None:
        """Hand unstarted attempts back (ids and attempts only: the control plane has them)."""
        target = self.target
        if target is None:
            return  # not registered: the control plane re-queues what we held
        back = [Run(run.id, run.name, b"", run.attempt, priority=run.priority) for run in runs]
        target.tell_nowait(Completed([], len(back), back))


@attrs.define
class SubworkerNode:
    """A running subworker (from ``open_subworker``)."""

    url: str
    system: actors.ActorSystem
    executor: Executor
    peer: actors.Peer
    outlet: Outlet = attrs.field(factory=Outlet)
    """Where the executor's outcomes go (the control plane, once registered)."""
    registrations: int = 0
    watchdog: LoopWatchdog | None = None

    @property
    def node_id(self) -> str:
        """This node's uuid."""
        return self.system.node_id

    @property
    def connected(self) -> bool:
        """True while linked to the control plane."""
        return self.peer.connected

    async def drain(self) -> None:
        """Stop taking work and wait for running tasks (the caller owns the timeout).

        The control plane is told first, so it sends nothing more; whatever was already
        on its way still runs. Results keep flowing to the control plane meanwhile.
        """
        target = self.outlet.target
        if target is not None:
            try:
                await target.ask(Retire())
            except actors.ActorError as exc:  # the link is down: nothing more comes anyway
                log.debug("could not tell the control plane we retire: %s", exc)
        await self.system.ref(names.EXECUTOR).ask(Drain())


def _completed(outcomes: list[Outcome], last: bool, credits: int) -> Completed:
    # The slots come back with the last part, after every outcome they held.
    return Completed(outcomes, credits if last else 0)


def _lost_outcomes(ref: actors.ActorRef, outcomes: list[Outcome], exc: Exception) -> None:
    log.error(
        "could not report %d outcomes to the control plane (%s): %s; it redelivers them "
        "when this worker's link drops",
        len(outcomes),
        ", ".join(o.id for o in outcomes[:5]) + (", ..." if len(outcomes) > 5 else ""),
        exc,
    )


def _outcome_sender() -> Sender[Outcome]:
    return Sender("outcomes", _completed, outcome_size, drop_outcome_value, on_lost=_lost_outcomes)


@asynccontextmanager
async def open_subworker(
    url: str | None = None,
    tasks: Iterable[str] | str | None = None,
    *,
    concurrency: int = 8,
    cluster: str = "default",
    secret: str | bytes | None = None,
    registry: Registry | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    ssl_context: ssl.SSLContext | None = None,
    link: actors.LinkConfig | None = None,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
    clock: Callable[[], float] | None = None,
    sync_tasks_in_threads: bool = True,
    loop_watchdog: float | None = DEFAULT_THRESHOLD,
    queues: Iterable[str] | str | None = None,
    prefetch: int | None = None,
    settings: SubworkerSettings | None = None,
) -> AsyncIterator[SubworkerNode]:
    """Run a subworker for the duration of the block; it yields once registered.

    ``url`` None discovers the control plane by UDP beacon (same ``cluster`` and
    ``secret``). ``clock`` (POSIX seconds) stamps results; the test harness passes the
    cluster's clock so virtual time and ``start_time`` agree everywhere.
    ``loop_watchdog`` (seconds, None: off) is how long the trio loop may be held before
    a watchdog thread logs which task holds it (an ``async def`` task that blocks).
    ``queues`` (names, or a comma-separated string) limits it to tasks of those queues;
    without, it serves every queue of the tasks it has. It announces its task names,
    their options and its queues when it joins; the control plane sends it only those
    tasks. ``registry`` (default: every ``@task`` imported in this process) is what it
    has. ``prefetch`` (default: ``concurrency``) is how many short tasks it keeps ready
    beyond its slots, run in priority order; 0 takes work only for free slots. The
    caller owns the timeout for finding and joining it:
    ``with trio.fail_after(10): async with open_subworker(...) as sw: ...``.

    Every option after ``url`` and ``tasks`` is keyword-only. ``settings`` (a
    SubworkerSettings) gives them all, ``url`` included, as one value instead; then no
    other option may be passed.

    Args:
        url: the control plane's URL (``ws://HOST:PORT``, ``wss://`` with
            ``ssl_context``); None discovers it.
        tasks: task modules to import (names, or a comma-separated string).
        concurrency: slots: tasks it runs at once.
        cluster: the cluster's name (discovery and the hello check it).
        secret: the cluster secret (None: none).
        registry: the tasks it has (default: every ``@task`` of this process).
        max_payload: the largest frame and result, in bytes.
        ssl_context: trusted CAs for a ``wss://`` URL.
        link: the link's timeouts and limits (default: actors.LinkConfig()).
        discovery_port: the UDP port discovery asks on.
        clock: POSIX seconds that stamp results (default: time.time).
        sync_tasks_in_threads: run sync tasks in worker threads (False: in the loop).
        loop_watchdog: seconds the loop may be held before it is logged (None: off).
        queues: the queues it serves (None: all).
        prefetch: short tasks kept ready beyond the slots (None: ``concurrency``).
        settings: every option above but ``tasks``, as one SubworkerSettings.

    Raises:
        ConfigurationError: ``settings`` together with other options, ``concurrency``
            below 1, ``prefetch`` below 0, no queue named in ``queues``, an empty
            secret, a bad URL or a TLS context for a ws:// URL.
        TaskModuleError: a module of ``tasks`` could not be imported.
        ConnectionFailed: discovery found no control plane (or two) within its
            timeout, the hello was refused, or the control plane refused the
            registration.
        AuthenticationFailed: the control plane refused the secret.
    """
    options = {k: v for k, v in locals().items() if k not in ("tasks", "settings")}
    settings = settle(SubworkerSettings, settings, options, "open_subworker")
    async with _open_subworker(tasks, settings) as node:
        yield node


@asynccontextmanager
async def _open_subworker(
    tasks: Iterable[str] | str | None, s: SubworkerSettings
) -> AsyncIterator[SubworkerNode]:
    """open_subworker's body, once its options are settled.

    Raises:
        ConfigurationError: a bad option (as ``open_subworker``).
        TaskModuleError: a module of ``tasks`` could not be imported.
        ConnectionFailed: no control plane found, or it refused the hello or the
            registration.
        AuthenticationFailed: the control plane refused the secret.
    """
    if s.concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {s.concurrency}")
    prefetch = s.concurrency if s.prefetch is None else s.prefetch
    if prefetch < 0:
        raise ConfigurationError(f"prefetch must be 0 or more, got {prefetch}")
    import_task_modules(tasks)
    registry = s.registry if s.registry is not None else default_registry
    queue_names = _queue_names(s.queues)
    secret_key = secret_bytes(s.secret)
    url = s.url
    if url is None:
        url = await discover_control_plane(s.cluster, secret_key, s.discovery_port)
    check_tls(url, s.ssl_context)
    config = node_config(
        cluster=s.cluster, role=ROLE, secret=secret_key, link=s.link, max_payload=s.max_payload
    )
    async with actors.open_actor_system(config) as system:
        try:
            peer = await system.connect(url, ssl_context=s.ssl_context)
        except actors.AuthenticationError as exc:
            raise AuthenticationFailed(f"the control plane at {url} refused us: {exc}") from None
        except actors.HandshakeError as exc:
            raise ConnectionFailed(f"cannot join the control plane at {url}: {exc}") from None
        outlet = Outlet()
        executor = Executor(
            registry,
            s.concurrency,
            outlet.report,
            system.node_id[:8],
            max_result_size=s.max_payload,
            clock=s.clock or time.time,
            threads=s.sync_tasks_in_threads,
            prefetch=prefetch,
            give_back=outlet.give_back,
        )
        await system.spawn(names.EXECUTOR, executor, capacity=100_000)
        node = SubworkerNode(url, system, executor, peer, outlet)
        outlet.sender.start(system.nursery)
        if s.loop_watchdog is None:
            await system.nursery.start(_keep_registered, node, registry, s.concurrency, queue_names)
            yield node
            return
        node.watchdog = LoopWatchdog(s.loop_watchdog, attempt_code=Executor.attempt_code())
        async with node.watchdog.running():
            await system.nursery.start(_keep_registered, node, registry, s.concurrency, queue_names)
            yield node


def _queue_names(queues: Iterable[str] | str | None) -> list[str] | None:
    """Validated queue names (None: every queue).

    Raises:
        ConfigurationError: the names are all empty.
    """
    if queues is None:
        return None
    if isinstance(queues, str):
        queues = queues.split(",")
    names = sorted({q.strip() for q in queues if q and q.strip()})
    if not names:
        raise ConfigurationError("queues must name at least one queue (or be None for all)")
    return names


async def _keep_registered(
    node: SubworkerNode,
    registry: Registry,
    concurrency: int,
    queues: list[str] | None = None,
    *,
    task_status: Any,
) -> None:
    """Register now, and again after every reconnect.

    Raises:
        ConnectionFailed: the control plane refused the first registration.
    """
    first = True
    peer = node.peer
    gateway = peer.ref(names.REGISTRATION)
    while True:
        await peer.wait_connected()
        try:
            name = await gateway.ask(
                RegisterWorker(
                    node.system.node_id,
                    concurrency,
                    registry.names(),
                    names.EXECUTOR,
                    busy=node.executor.busy,
                    infos=registry.infos(),
                    queues=queues,
                    prefetch=node.executor.prefetch,
                ),
                sender=node.system.ref(names.EXECUTOR),
            )
        except actors.PeerDown:
            continue
        except actors.RemoteError as exc:
            log.error("the control plane refused this subworker: %s", exc)
            if first:
                raise ConnectionFailed(f"the control plane refused this subworker: {exc}") from None
            await trio.sleep(1.0)
            continue
        node.outlet.target = peer.ref(name)
        node.registrations += 1
        log.info("registered with the control plane at %s as %s", node.url, name)
        if first:
            first = False
            task_status.started()
        await peer.wait_disconnected()
        node.outlet.target = None
        # Unstarted work: the control plane re-queues it when it sees the link drop.
        node.executor.drop_backlog()
        log.warning("lost the control plane at %s; reconnecting", node.url)


async def run_subworker(*, task_status: Any = trio.TASK_STATUS_IGNORED, **options: Any) -> None:
    """``open_subworker`` for ``nursery.start``: reports the SubworkerNode, runs until cancelled.

    Raises:
        ConfigurationError, TaskModuleError, ConnectionFailed, AuthenticationFailed: as
            ``open_subworker``, from ``nursery.start``.
    """
    async with open_subworker(**options) as node:
        task_status.started(node)
        await trio.sleep_forever()
