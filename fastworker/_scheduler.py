"""The Scheduler actor: a timer service for ETAs, retry backoff and periodic/cron ticks.

It holds no task state: the control plane tells it "wake me for task X at T", and it
tells the control plane which tasks are due and which periodic tasks tick. Everything
runs on trio's clock (``trio.sleep_until`` semantics), so it runs in virtual time
under pytest-trio's autojump clock.
"""

from __future__ import annotations

import heapq
import logging
import math
from itertools import count
from typing import Any

import attrs
import trio

from actors import Actor, ActorRef, Context

from ._clock import WallClock
from ._protocol import (
    Due,
    NextFireTimes,
    ScheduleAt,
    Tick,
    Unschedule,
)
from ._registry import TaskSpec

log = logging.getLogger("fastworker.scheduler")


@attrs.frozen
class SchedulerStatistics:
    """Timers armed."""

    scheduled: int
    periodic: int
    ticks: int
    due: int


class Scheduler(Actor):
    """Timers for scheduled tasks and periodic schedules; reports to ``control_plane``."""

    def __init__(self, control_plane: ActorRef, periodic: list[TaskSpec], clock: WallClock):
        self.control_plane = control_plane
        self.periodic = {spec.name: spec for spec in periodic}
        self.clock = clock
        self._heap: list[tuple[float, int, str, str]] = []
        self._scheduled: dict[str, float] = {}
        self._next_tick: dict[str, float] = {}
        self._seq = count()
        self.ticks = 0
        self.due = 0

    def statistics(self) -> SchedulerStatistics:
        """How many timers are armed."""
        return SchedulerStatistics(len(self._scheduled), len(self.periodic), self.ticks, self.due)

    async def started(self, ctx: Context) -> None:
        """Arm every periodic schedule."""
        for spec in self.periodic.values():
            self._arm_periodic(spec)

    def _arm_periodic(self, spec: TaskSpec) -> None:
        now_trio = trio.current_time()
        if spec.repeat_interval is not None:
            at = now_trio + spec.repeat_interval
            fire_wall = self.clock.now() + spec.repeat_interval
        else:
            assert spec.cron is not None
            fire_wall = spec.cron.next_after_timestamp(self.clock.now())
            at = self.clock.to_trio(fire_wall)
        self._next_tick[spec.name] = fire_wall
        heapq.heappush(self._heap, (at, next(self._seq), "tick", spec.name))

    async def run(self, ctx: Context) -> None:
        """Wait for messages or the earliest timer, whichever comes first."""
        mailbox = ctx.mailbox
        while True:
            self._fire_due()
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(deadline):
                batch = await mailbox.get_batch()
                await self.handle_batch(ctx, batch)

    def _fire_due(self) -> None:
        now = trio.current_time()
        heap = self._heap
        due: list[str] = []
        while heap and heap[0][0] <= now:
            at, _, kind, key = heapq.heappop(heap)
            if kind == "task":
                if self._scheduled.get(key) == at:
                    del self._scheduled[key]
                    due.append(key)
            else:
                spec = self.periodic.get(key)
                if spec is None:
                    continue
                self.ticks += 1
                fire_wall = self._next_tick[key]
                self.control_plane.tell_nowait(Tick(key, fire_wall))
                # The next fire time is computed from now, so overdue ticks are skipped.
                self._arm_periodic(spec)
        if due:
            self.due += len(due)
            self.control_plane.tell_nowait(Due(due))

    async def receive(self, ctx: Context, message: Any) -> Any:
        """ScheduleAt, Unschedule, NextFireTimes."""
        if isinstance(message, ScheduleAt):
            for task_id, at in message.items:
                self._scheduled[task_id] = at
                heapq.heappush(self._heap, (at, next(self._seq), "task", task_id))
            return None
        if isinstance(message, Unschedule):
            for task_id in message.ids:
                self._scheduled.pop(task_id, None)
            if len(self._heap) > 2 * len(self._scheduled) + len(self.periodic) + 1024:
                self._heap = [
                    e for e in self._heap if e[2] == "tick" or self._scheduled.get(e[3]) == e[0]
                ]
                heapq.heapify(self._heap)
            return None
        if isinstance(message, NextFireTimes):
            return dict(self._next_tick)
        raise TypeError(f"Scheduler does not handle {type(message).__name__}")
