"""What the control plane keeps: its settings and a task's record (a worker's slot: ``_pool``).

Plain data with no behaviour beyond bookkeeping (no trio, no messages sent).
"""

from __future__ import annotations

from typing import Protocol

import attrs

from .._messages import Outcome, Run, Submission, TaskInfo
from .._model import TaskStatus
from .._names import LOCAL_WORKER
from .._serialization import DEFAULT_MAX_PAYLOAD

PREFETCH_BELOW = 0.005
"""Seconds: only tasks whose runs average less than this are prefetched (see _dispatch)."""

RECENT_DONE = 20_000
"""Finished task ids remembered so a resubmission after a dropped link runs nothing twice."""


class Observer(Protocol):
    """Told after each batch what the control plane did (read-only; the dashboard).

    ``submissions`` accepted; ``dispatched`` (worker id, runs) sent to workers;
    ``requeued`` (id, name, why) with why "retry", "redelivered", "periodic" (a new
    periodic run) or "refused" (the journal could not record it: it never runs);
    ``outcomes`` terminal (the list the cache gets). The lists are the control plane's
    own (no copies): an observer must not change them, must not block and should be
    quick: it runs in the control plane's turn, a plain call rather than a message, so
    feeding it costs no task switch.
    """

    def __call__(
        self,
        submissions: list[Submission],
        dispatched: list[tuple[str, list[Run]]],
        requeued: list[tuple[str, str, str]],
        outcomes: list[Outcome],
    ) -> None: ...


@attrs.frozen
class ControlPlaneConfig:
    """Limits and policies of the control plane."""

    max_queue: int = 100_000
    aging: float | None = 60.0
    worker_name: str = LOCAL_WORKER
    cancel_timeout: float = 5.0
    max_payload: int = DEFAULT_MAX_PAYLOAD
    prefetch_below: float = PREFETCH_BELOW
    result_ttl: float = 3600.0
    """How long a finished task's unique key still answers with its id (its result's TTL)."""
    unique_keys: int = 100_000
    """Finished tasks' unique keys remembered at most (the oldest are forgotten first)."""
    max_worker_losses: int = 2
    """A task in flight on this many lost workers ends ``failure`` with WorkerLost."""


class TaskRecord:
    """A non-terminal task as the control plane tracks it."""

    __slots__ = (
        "attempts",
        "enqueued_at",
        "id",
        "losses",
        "name",
        "payload",
        "periodic",
        "priority",
        "spec",
        "started_at",
        "status",
        "suspect",
        "worker",
    )

    def __init__(
        self, id: str, name: str, payload: bytes, priority: int, spec: TaskInfo, now: float
    ) -> None:
        self.id = id
        self.name = name
        self.payload = payload
        self.priority = priority
        self.spec = spec
        self.status = TaskStatus.PENDING
        self.attempts = 0
        self.enqueued_at = now
        self.worker: str | None = None
        self.started_at: float | None = None
        self.periodic = False
        self.losses = 0
        """Workers lost while this task was in flight on them."""
        self.suspect = False
        """In flight on a worker that died: it runs alone on a worker until it ends."""
