"""A structured-concurrency test harness: a whole cluster inside one trio run.

::

    async def test_retries(autojump_clock):
        async with fastworker.testing.open_cluster(tasks=["mytasks"], subworkers=2) as cluster:
            assert await cluster.client.call("flaky") == "ok"

The control plane, the subworkers and the client are the production actors speaking the
production protocol. With ``transport="memory"`` (the default) there are no sockets, so
pytest-trio's ``autojump_clock`` works: retries with exponential backoff, ETAs and daily
cron schedules run in virtual time, in milliseconds. ``transport="websocket"`` runs the
same cluster over real loopback sockets (do not combine it with the autojump clock).

Routing between services is tested the same way: give each subworker its own task
modules or queues, and the control plane only what it imports itself::

    async with open_cluster(subworkers=[{"tasks": ["svc_a"]}, {"tasks": ["svc_b"]}]) as c:
        await c.client.call("svc_a.work")          # runs on the first subworker only
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
import trio.testing

import actors

from ._client import Client
from ._control_plane_node import ControlPlaneNode, open_control_plane
from ._errors import ConfigurationError
from ._open_client import open_client
from ._registry import Registry, default_registry, import_task_modules
from ._subworker_node import SubworkerNode, open_subworker

__all__ = ["MEMORY_LINK", "Cluster", "open_cluster"]

MEMORY_LINK = actors.LinkConfig(heartbeat_interval=60.0, heartbeat_timeout=180.0)
"""Link settings ``open_cluster`` uses on the memory transport (pass ``link=`` to change)."""


@attrs.define
class _Slot:
    node: SubworkerNode
    scope: trio.CancelScope


@attrs.define
class Cluster:
    """A running test cluster (from ``open_cluster``).

    ``client`` is connected; ``control_plane`` is the ControlPlaneNode; ``subworkers``
    lists the live SubworkerNodes (in start order).
    """

    client: Client
    control_plane: ControlPlaneNode
    _nursery: trio.Nursery
    _tasks: list[str] | None
    _concurrency: int
    _options: dict[str, Any]
    _slots: list[_Slot] = attrs.field(factory=list)

    @property
    def subworkers(self) -> list[SubworkerNode]:
        """The live subworkers."""
        return [slot.node for slot in self._slots]

    @property
    def url(self) -> str:
        """The control plane's URL."""
        return self.control_plane.url

    @asynccontextmanager
    async def open_client(self, **options: Any) -> AsyncIterator[Client]:
        """A second, independent client of this cluster.

        Args:
            **options: ``open_client`` options over the cluster's own.

        Yields:
            The connected Client, closed when the block ends.

        Raises:
            ConnectionFailed: the client could not reach the control plane.
        """
        async with open_client(self.url, **{**self._client_options(), **options}) as client:
            yield client

    def _client_options(self) -> dict[str, Any]:
        return _client_options(self._options)

    async def add_subworker(
        self,
        concurrency: int | None = None,
        *,
        tasks: Iterable[str] | str | None = None,
        queues: Iterable[str] | str | None = None,
    ) -> SubworkerNode:
        """Start one more subworker and wait until it is registered.

        ``tasks`` (module names) gives it only the tasks those modules define, as a
        service of its own would have; ``queues`` limits it to those queues. Without
        either it has every task of this process and serves every queue.

        Args:
            concurrency: its slots (default: the cluster's ``concurrency``).
            tasks: task modules it has (default: every task of this process).
            queues: queues it serves (default: every queue).

        Returns:
            The registered SubworkerNode.

        Raises:
            TaskModuleError: a module of ``tasks`` could not be imported.
            ConfigurationError: a bad ``concurrency`` or ``queues``.
            ConnectionFailed: the control plane refused the registration.
        """
        registry = None
        if tasks is not None:
            modules = import_task_modules(tasks)
            registry = default_registry.subset(modules)
        slot: _Slot = await self._nursery.start(
            self._run_subworker, concurrency or self._concurrency, registry, queues
        )
        self._slots.append(slot)
        return slot.node

    async def _run_subworker(
        self,
        concurrency: int,
        registry: Registry | None,
        queues: Iterable[str] | str | None,
        *,
        task_status: Any,
    ) -> None:
        options = {
            k: v
            for k, v in self._options.items()
            if k in ("registry", "sync_tasks_in_threads", "loop_watchdog")
        }
        if registry is not None:
            options["registry"] = registry
        with trio.CancelScope() as scope:
            async with open_subworker(
                self.url,
                tasks=self._tasks if registry is None else None,
                concurrency=concurrency,
                queues=queues,
                **self._client_options(),
                **options,
                clock=self.control_plane.clock.now,
            ) as node:
                task_status.started(_Slot(node, scope))
                await trio.sleep_forever()

    async def join(self, *, scheduled: bool = True, poll: float = 0.01) -> None:
        """Wait until the cluster has no work left: nothing queued, running, waiting to
        be redelivered, and (with ``scheduled``) nothing scheduled or retrying.

        The test's way to say "run everything submitted so far" (as dramatiq's
        ``broker.join``): under the autojump clock countdowns, ETAs and retry backoffs
        pass in virtual time. The caller owns the timeout (``with trio.fail_after(...)``):
        a task no worker can run, or a periodic schedule firing faster than its runs
        end, keeps the cluster busy. It looks every ``poll`` seconds (virtual under the
        autojump clock).

        Args:
            scheduled: also wait for scheduled and retrying tasks (False: only for what
                is queued or running now).
            poll: seconds between two looks at the control plane's statistics.
        """
        while True:
            stats = await self.control_plane.statistics()
            busy = stats.queued.total + stats.running + stats.suspects
            if scheduled:
                busy += stats.scheduled
            if not busy and not self.control_plane.control_plane.tasks.awaiting:
                return
            await trio.sleep(poll)

    async def kill_subworker(self, index: int = 0) -> SubworkerNode:
        """Kill a subworker abruptly, as a crash would: no goodbye, work in flight lost.

        Its link is cut (close code 1006) before anything else, so nothing it was doing
        reaches the control plane; the control plane notices the lost link and
        redelivers its in-flight tasks.

        Args:
            index: which live subworker, in start order.

        Returns:
            The killed SubworkerNode (no longer in ``subworkers``).

        Raises:
            IndexError: there is no live subworker at ``index``.
        """
        slot = self._slots.pop(index)
        node = slot.node
        node.outlet.target = None  # nothing more leaves this "process"
        link = node.peer.link
        if link is not None and isinstance(link.connection, actors.MemoryConnection):
            link.connection.sever()
        slot.scope.cancel()
        await trio.lowlevel.checkpoint()
        return node


def _client_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The cluster's options a client (and a subworker) of it needs too."""
    return {k: v for k, v in options.items() if k in ("cluster", "secret", "link")}


def _autojumping() -> bool:
    clock = trio.lowlevel.current_clock()
    return isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold != math.inf


@asynccontextmanager
async def open_cluster(
    tasks: Iterable[str] | str | None = None,
    subworkers: int | Sequence[Mapping[str, Any]] = 1,
    concurrency: int = 4,
    transport: str = "memory",
    **control_plane_options: Any,
) -> AsyncIterator[Cluster]:
    """Run a control plane, ``subworkers`` subworkers and a client in this trio run.

    ``subworkers`` is a number, or one mapping per subworker with any of ``tasks``
    (its own task modules), ``queues`` and ``concurrency`` (see ``add_subworker``).
    When any subworker has its own ``tasks``, the control plane has only the tasks of
    ``tasks`` (none if None) and learns the rest from what the subworkers announce, as
    a control plane that imports no service's code would.
    ``control_plane_options`` go to ``open_control_plane`` (``max_queue=``,
    ``result_ttl=``, ``local_concurrency=``, ``start_time=`` for calendar tests, ...);
    ``loop_watchdog=`` goes to the subworkers (off under the autojump clock).
    Leaving the block stops everything.

    Raises:
        ConfigurationError: ``transport`` is neither "memory" nor "websocket", a
            subworker mapping has an unknown key, or an option is invalid (as
            ``open_control_plane`` and ``open_subworker`` raise it).
        TaskModuleError: a module of ``tasks`` could not be imported.
        OSError: the websocket transport could not listen on loopback.
    """
    if transport not in ("memory", "websocket"):
        raise ConfigurationError('transport must be "memory" or "websocket"')
    if isinstance(tasks, str):
        tasks = [tasks]
    specs: list[Mapping[str, Any]] = (
        [{} for _ in range(subworkers)] if isinstance(subworkers, int) else list(subworkers)
    )
    for spec in specs:
        unknown = set(spec) - {"tasks", "queues", "concurrency"}
        if unknown:
            raise ConfigurationError(
                f"subworker options take tasks, queues and concurrency, not {sorted(unknown)}"
            )
    options = dict(control_plane_options)
    options.setdefault("discovery", False)
    if transport == "memory":
        options.setdefault("url", f"memory://fastworker-{uuid.uuid4().hex[:12]}")
        # In-memory links only die when a test cuts them (kill_subworker closes them at
        # once), so heartbeats are slow: a virtual week of cron then costs a few
        # thousand wake-ups, not millions. A frozen link (MemoryConnection.freeze) is
        # still noticed, within MEMORY_LINK's timeout of virtual time.
        options.setdefault("link", MEMORY_LINK)
        if _autojumping():
            # While a worker thread runs, every task looks blocked and the autojump clock
            # leaps to the next deadline; sync tasks run in the loop instead, so virtual
            # time stands still while they work.
            options.setdefault("sync_tasks_in_threads", False)
            # The watchdog measures real time; virtual time leaps would make it tick
            # needlessly (and nothing under this clock may block the loop anyway).
            options.setdefault("loop_watchdog", None)
    subworker_only = ("loop_watchdog",)
    cp_options = {k: v for k, v in options.items() if k not in subworker_only}
    if any(spec.get("tasks") is not None for spec in specs) and "registry" not in options:
        cp_registry = Registry()
        if tasks:
            cp_registry = default_registry.subset(import_task_modules(tasks))
        cp_options["registry"] = cp_registry
    async with open_control_plane(tasks, **cp_options) as cp, trio.open_nursery() as nursery:
        async with open_client(cp.url, **_client_options(options)) as client:
            cluster = Cluster(
                client, cp, nursery, list(tasks) if tasks else None, concurrency, options
            )
            for spec in specs:
                await cluster.add_subworker(
                    spec.get("concurrency"), tasks=spec.get("tasks"), queues=spec.get("queues")
                )
            try:
                yield cluster
            finally:
                nursery.cancel_scope.cancel()
