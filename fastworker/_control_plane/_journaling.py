"""The journal as an observer of the control plane's transitions (trio-free).

What the journal is only *told* (names announced, outcomes final, tasks lost with a
worker) goes through ``JournalNotes``: with no journal each note is a no-op, so the
control plane's parts do not branch on it. What the journal *gates* stays in the
parts, because it changes what happens: with a journal an accepted task is
acknowledged and run only once it is on disk (``Persist`` then ``Durable``), a task
run in this very process is marked running first (``Started``), and a drain that
runs out of time leaves unfinished tasks on disk instead of failing them.
"""

from __future__ import annotations

from typing import Any

from .._messages import Outcome, TaskInfo
from .._protocol import Announce, Lost, Record


class JournalNotes:
    """Tells the journal (``ref``, None: no journal) what it keeps a record of."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any = None) -> None:
        self.ref = ref

    def announced(self, infos: list[TaskInfo]) -> None:
        """Workers announced these task names (new, or with new options)."""
        if self.ref is not None and infos:
            self.ref.tell_nowait(Announce(infos))

    def finished(self, outcomes: list[Outcome]) -> None:
        """These outcomes are final (the cache has them too)."""
        if self.ref is not None and outcomes:
            self.ref.tell_nowait(Record(outcomes))

    def lost(self, losses: list[tuple[str, int, int]]) -> None:
        """(id, attempts, losses) of tasks in flight on a worker that was lost."""
        if self.ref is not None and losses:
            self.ref.tell_nowait(Lost(losses))
