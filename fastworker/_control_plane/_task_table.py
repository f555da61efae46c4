"""The task table: every non-terminal task by id, and what admission keeps beside it.

Pure and trio-free (time comes from a callable): the records, the ids finished lately
(a resubmission runs nothing twice), the unique keys, the tasks waiting for their
journal commit, the periodic run in flight per name, and the queue's bound. The
control plane's parts call it and send what follows (tests/fastworker/test_task_table.py
tests it directly).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol, TypeVar

from .._errors import QueueFull
from .._model import TaskStatus
from ._records import RECENT_DONE, TaskRecord
from ._tables import RecentIds, UniqueKeys


class _Submitted(Protocol):
    """A submission as the table sees it."""

    @property
    def id(self) -> str: ...

    @property
    def unique_key(self) -> str | None: ...


S = TypeVar("S", bound=_Submitted)


class TaskTable(dict[str, TaskRecord]):
    """Every non-terminal task by id (a dict: lookups at C speed on the hot paths).

    A task is ``add``-ed when accepted (or restored, or ticked), ``end``-ed when its
    outcome is final (its id is remembered, its unique key answers for ``result_ttl``),
    or ``refuse``-d when the journal could not record it (as if never submitted).
    """

    __slots__ = ("awaiting", "max_queue", "periodic", "recent", "unique")

    def __init__(
        self,
        now: Callable[[], float],
        *,
        max_queue: int = 100_000,
        result_ttl: float = 3600.0,
        unique_keys: int = 100_000,
        recent: int = RECENT_DONE,
    ) -> None:
        super().__init__()
        self.max_queue = max_queue
        """Tasks waiting or running at most (``check_room``)."""
        self.recent = RecentIds(recent)
        """Ids finished lately: a resubmission of one is not taken again."""
        self.unique = UniqueKeys(now, result_ttl, unique_keys)
        self.awaiting: dict[str, float | None] = {}
        """Accepted tasks waiting for their journal commit: id -> trio time to run (eta)."""
        self.periodic: dict[str, str] = {}
        """Periodic task name -> the id of its run last started (one at a time)."""

    def known(self, task_id: str) -> bool:
        """True if ``task_id`` is in the table or finished lately."""
        return task_id in self or task_id in self.recent

    def fresh(self, group: Sequence[S]) -> list[S]:
        """Those of ``group`` never taken: not in the table, not finished lately.

        A resubmission (after a dropped link) is idempotent: its ids are left out.
        """
        done = self.recent
        return [s for s in group if s.id not in self and s.id not in done]

    def dedupe(self, group: Sequence[S], new: list[S]) -> tuple[list[S], list[str] | None]:
        """Leave out of ``new`` those whose unique key is held (see ``UniqueKeys.dedupe``).

        Returns the submissions to accept and, if any of them has a key, the id each
        of ``group`` maps to (None: no keys, each maps to its own id).
        """
        if not any(s.unique_key is not None for s in new):
            return new, None
        return self.unique.dedupe(group, new, self.__contains__)

    def check_room(self, count: int) -> None:
        """Check that ``count`` more tasks fit under ``max_queue``.

        Raises:
            QueueFull: they do not; nothing of them may be accepted.
        """
        if len(self) + count > self.max_queue:
            raise QueueFull(
                f"the queue is full ({self.max_queue} tasks waiting or running): "
                "retry later, add subworkers, or raise max_queue"
            )

    def add(self, rec: TaskRecord, unique_key: str | None = None) -> None:
        """Take ``rec`` (holding ``unique_key``); a periodic run becomes its name's current."""
        self[rec.id] = rec
        if unique_key is not None:
            self.unique.hold(rec.id, unique_key)
        if rec.periodic:
            self.periodic[rec.name] = rec.id

    def end(self, rec: TaskRecord) -> None:
        """``rec``'s outcome is final: out of the table, its id remembered, its key released."""
        task_id = rec.id
        del self[task_id]
        if self.unique.key_of:
            self.unique.release(task_id)
        recent = self.recent  # RecentIds.add, inlined: this runs once per task
        recent[task_id] = None
        if len(recent) > recent.limit:
            del recent[next(iter(recent))]
        if rec.periodic and self.periodic.get(rec.name) == rec.id:
            del self.periodic[rec.name]

    def periodic_running(self, name: str) -> str | None:
        """The id of ``name``'s periodic run still in the table, if any (a tick skips)."""
        active = self.periodic.get(name)
        return active if active is not None and active in self else None

    # -- durability (with a journal) ------------------------------------------------
    def await_durable(self, task_id: str, at: float | None) -> None:
        """``task_id`` waits for its journal commit; then it runs at ``at`` (None: now)."""
        self.awaiting[task_id] = at

    def durable(self, task_id: str) -> tuple[TaskRecord, float | None] | None:
        """``task_id`` is on disk: its record and when it runs, or None (not waiting, or
        no longer pending: cancelled meanwhile)."""
        if task_id not in self.awaiting:
            return None
        at = self.awaiting.pop(task_id)
        rec = self.get(task_id)
        if rec is None or rec.status is not TaskStatus.PENDING:
            return None
        return rec, at

    def refuse(self, task_id: str) -> TaskRecord | None:
        """The journal could not record ``task_id``: forgotten as if never submitted.

        Returns its record, or None if it was not waiting for a commit (or no longer
        pending): then nothing changes.
        """
        if self.awaiting.pop(task_id, False) is False:
            return None
        rec = self.get(task_id)
        if rec is None or rec.status is not TaskStatus.PENDING:
            return None
        del self[task_id]
        self.unique.forget(task_id)
        return rec

    # -- order ----------------------------------------------------------------------
    def in_accept_order(self, ids: AbstractSet[str]) -> list[str]:
        """Those of ``ids`` in the table, in the order their tasks were accepted."""
        if not ids:
            return []
        return [task_id for task_id in self if task_id in ids]
