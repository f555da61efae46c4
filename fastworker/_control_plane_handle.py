"""The handle of a running control plane (``ControlPlaneNode``, from
``open_control_plane``): where it listens, its statistics, and its graceful stop
(``drain``, then ``abandon`` for what did not finish in time). The node is assembled
in ``_control_plane_node``."""

from __future__ import annotations

import logging

import attrs
import trio

import actors

from . import _names as names
from ._clock import WallClock
from ._control_plane import ControlPlane
from ._executor import Executor
from ._journal import Journal
from ._messages import Drain
from ._protocol import (
    Abandon,
    BeginDrain,
    GetCacheStatistics,
    GetClusterStats,
    NextFireTimes,
    Sync,
    WaitIdle,
)
from ._records import ClusterStats, stats_from_wire
from ._registry import Registry
from ._result_cache import ResultCache
from ._scheduler import Scheduler

log = logging.getLogger("fastworker.control_plane")


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
        left = stats.queued.total
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
