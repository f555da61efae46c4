"""What every route reads: a task from whichever actor knows it, the shared statistics
snapshot, the schedules, and submitting one task.

It talks to the actors only by messages (``ask``/``tell``) and reads the Hub's ring;
every wait is bounded by the caller.
"""

from __future__ import annotations

import secrets
import time
from itertools import count
from typing import Any

import attrs
import trio

from actors import Future

from .. import _names as names
from .._messages import Outcome, Submission
from .._protocol import Accept, Lookup, Peek, StatusOf, TaskDetail
from ._host import ControlPlaneHost
from ._hub import Hub
from ._requests import max_body
from ._responses import ApiError
from ._ring import RecentTasks
from ._shapes import expired_task_json, live_task_json, outcome_task_json, status_task_json
from ._summary import TaskSummary

STATS_INTERVAL = 0.9
"""The statistics the page shows are at most this old (shared by every open page)."""


@attrs.define
class Snapshot:
    """ClusterStats as a dict, when it was taken (monotonic, wall) and the Hub's version
    then."""

    stats: dict[str, Any]
    at: float
    wall: float
    version: int


class Backend:
    """The dashboard's view of the node: its actors, the Hub and the ring."""

    def __init__(self, host: ControlPlaneHost, hub: Hub, *, cluster: str, max_payload: int):
        self.host = host
        self.hub = hub
        self.ring: RecentTasks = hub.ring
        self.core = host.system.ref(names.CONTROL_PLANE)
        self.cache = host.system.ref(names.RESULT_CACHE)
        self.cluster = cluster
        self.max_payload = max_payload
        self.max_body = max_body(max_payload)
        self.last_snapshot: Snapshot | None = None
        """The shared statistics (see ``snapshot``), None before the first."""
        self._prefix = f"http-{secrets.token_hex(4)}"
        self._ids = count(1)
        self._snapshot_lock = trio.Lock()

    def new_id(self) -> str:
        """A fresh task id for an HTTP submission."""
        return f"{self._prefix}-{next(self._ids):x}"

    async def snapshot(self, max_age: float = STATS_INTERVAL) -> tuple[dict[str, Any], float]:
        """ClusterStats as a dict and its wall time, shared by every page for ``max_age``
        seconds (the control plane counts its tasks for it: not on every update)."""
        async with self._snapshot_lock:
            now = time.monotonic()
            if self.last_snapshot is None or now - self.last_snapshot.at > max_age:
                stats = await self.host.statistics()
                self.last_snapshot = Snapshot(
                    attrs.asdict(stats), time.monotonic(), time.time(), self.hub.version
                )
            return self.last_snapshot.stats, self.last_snapshot.wall

    async def schedules(self) -> list[dict[str, Any]]:
        """Periodic tasks with their next fire time."""
        times = await self.host.next_fire_times()
        return [
            {"name": s.name, "schedule": s.describe_schedule(), "next": times.get(s.name)}
            for s in self.host.registry.periodic()
        ]

    async def accept(self, sub: Submission) -> str:
        """Submit one task; its id (with a unique key: the id of the task holding the key).

        Raises:
            ApiError: refused (queue full, draining, unknown task, too large).
        """
        future = Future()
        await self.core.tell(Accept([([sub], future, None)]))
        try:
            answer = await future.wait()
        except Exception as exc:
            raise ApiError.refused(exc) from None
        # A name nobody can run is finished at once as TaskNotRegistered.
        if await self.cache.ask(Peek([sub.id])):
            outcome: Outcome | None = await self.cache.ask(Lookup(sub.id))
            if outcome is not None and outcome.error is not None:
                if outcome.error.type == "TaskNotRegistered":
                    raise ApiError(404, "TaskNotRegistered", outcome.error.message)
        if isinstance(answer, list) and answer and isinstance(answer[0], str):
            return answer[0]
        return sub.id

    async def task_json(self, task_id: str) -> dict[str, Any] | None:
        """The API's JSON of a task, from whichever part knows it (None: unknown)."""
        return (await self.task_detail(task_id))[0]

    async def task_detail(
        self, task_id: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The API's JSON of a task (as ``task_json``) and, for a queued or running task,
        the control plane's TaskDetail answer it came from (else None)."""
        info = await self.core.ask(TaskDetail(task_id))
        summary = self.ring.get(task_id)
        if info is not None:
            return live_task_json(task_id, info, summary), info
        return await self._settled_json(task_id, summary), None

    async def _settled_json(
        self, task_id: str, summary: TaskSummary | None
    ) -> dict[str, Any] | None:
        # Not a queued or running task: perhaps a workflow (or a member waiting for its
        # turn), which the control plane knows by status only. Asked before the cache:
        # whatever finished before this answer is in the cache by the next question.
        status = await self.core.ask(StatusOf(task_id))
        if status is not None:
            return status_task_json(task_id, status, summary)
        outcome: Outcome | None = await self.cache.ask(Lookup(task_id))
        if outcome is not None:
            return outcome_task_json(task_id, outcome, summary)
        if summary is not None and summary.terminal:
            # The result expired from the cache; the page's ring still has the summary.
            return expired_task_json(summary)
        return None
