"""Pure, trio-free tables the control plane keeps: unique keys, pending cancels, recent ids.

Each owns its state and nothing else: no messages, no clock of its own (time comes
from a callable), so each is tested directly (tests/fastworker/test_control_plane_parts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol


class _Keyed(Protocol):
    """A submission as the unique-key table sees it."""

    @property
    def id(self) -> str: ...

    @property
    def unique_key(self) -> str | None: ...


class UniqueKeys:
    """Which task holds each unique key: while it is not terminal, then ``ttl`` longer.

    A key is held (``hold``) when its task is accepted; when the task ends its key still
    answers with the task's id for ``ttl`` seconds (its result's lifetime), at most
    ``capacity`` such finished keys being kept (the oldest are forgotten first). A
    task refused before it ever ran (``forget``) leaves no trace.
    """

    __slots__ = ("_keys", "capacity", "key_of", "now", "ttl")

    def __init__(self, now: Callable[[], float], ttl: float, capacity: int) -> None:
        self.now = now
        self.ttl = ttl
        self.capacity = capacity
        self._keys: dict[str, tuple[str, float]] = {}
        """key -> (task id, expiry); expiry is inf while the task is not terminal."""
        self.key_of: dict[str, str] = {}
        """task id -> key, for tasks not terminal (empty: nothing to release)."""

    def __len__(self) -> int:
        return len(self._keys)

    def holder(self, key: str, is_live: Callable[[str], bool]) -> str | None:
        """The id of the task holding ``key``: live (``is_live``), or its result still kept."""
        entry = self._keys.get(key)
        if entry is None:
            return None
        task_id, expires = entry
        if is_live(task_id) or expires > self.now():
            return task_id
        del self._keys[key]
        return None

    def dedupe(
        self, group: Sequence[_Keyed], new: Sequence[Any], is_live: Callable[[str], bool]
    ) -> tuple[list[Any], list[str]]:
        """Leave out of ``new`` those whose key is held; answer the id each of ``group`` maps to.

        Two of ``new`` with the same key: the first is kept, the second maps to it.
        """
        fresh: list[Any] = []
        mapped: dict[str, str] = {}
        claimed: dict[str, str] = {}
        for sub in new:
            key = sub.unique_key
            if key is not None:
                holder = self.holder(key, is_live) or claimed.get(key)
                if holder is not None:
                    mapped[sub.id] = holder
                    continue
                claimed[key] = sub.id
            fresh.append(sub)
        return fresh, [mapped.get(s.id, s.id) for s in group]

    def hold(self, task_id: str, key: str) -> None:
        """``task_id`` (accepted, not terminal) holds ``key``."""
        self._keys[key] = (task_id, float("inf"))
        self.key_of[task_id] = key

    def release(self, task_id: str) -> None:
        """``task_id`` ended: its key answers for ``ttl`` more seconds (if it held one)."""
        key = self.key_of.pop(task_id, None)
        if key is None:
            return
        keys = self._keys
        entry = keys.pop(key, None)
        if entry is not None and entry[0] == task_id:
            # Kept (at the end, as the newest) while the result is cached.
            keys[key] = (task_id, self.now() + self.ttl)
            if len(keys) > self.capacity + len(self.key_of):
                oldest = next(iter(keys))
                if keys[oldest][1] != float("inf"):
                    del keys[oldest]

    def forget(self, task_id: str) -> None:
        """``task_id`` was refused (never ran): as if it had never been submitted."""
        key = self.key_of.pop(task_id, None)
        if key is not None and self._keys.get(key, ("",))[0] == task_id:
            del self._keys[key]


class _Resolvable(Protocol):
    def resolve(self, value: Any) -> None: ...


class PendingCancels:
    """Running tasks a cancel was asked for, waiting for their worker to confirm.

    Each holds the replies of the cancels waiting on it (none for a quiet cancel, a
    workflow's). ``begin`` says whether the worker must be asked (the first cancel);
    ``end`` answers the waiting replies when the task's outcome is final.
    """

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting: dict[str, list[Any]] = {}
        """task id -> replies waiting (empty: nothing pending)."""

    def __contains__(self, task_id: object) -> bool:
        return task_id in self.waiting

    def __len__(self) -> int:
        return len(self.waiting)

    def begin(self, task_id: str, reply: _Resolvable | None) -> bool:
        """Note a cancel of ``task_id`` (``reply`` waits, if any); True if it is the first."""
        replies = self.waiting.get(task_id)
        if replies is None:
            self.waiting[task_id] = [reply] if reply is not None else []
            return True
        if reply is not None:
            replies.append(reply)
        return False

    def end(self, task_id: str, cancelled: bool) -> None:
        """``task_id``'s outcome is final: each waiting cancel hears whether it ended cancelled.

        A task that finished first (success or failure) had already finished: False.
        """
        replies = self.waiting.pop(task_id, None)
        if replies:
            for reply in replies:
                reply.resolve(cancelled)


class RecentIds(dict[str, None]):
    """Ids of tasks finished lately (insertion order), at most ``limit`` of them.

    A resubmission after a dropped link carries ids already run: they are not run
    again. A dict (``in`` at C speed on the admission path); ``add`` keeps the bound.
    """

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def add(self, task_id: str) -> None:
        """Remember ``task_id``; forget the oldest past the limit."""
        self[task_id] = None
        if len(self) > self.limit:
            del self[next(iter(self))]

    def add_all(self, ids: Iterable[str]) -> None:
        """Remember each of ``ids``, then trim to the limit (oldest first)."""
        for task_id in ids:
            self[task_id] = None
        while len(self) > self.limit:
            del self[next(iter(self))]
