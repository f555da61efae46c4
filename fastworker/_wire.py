"""Sending batches to other nodes without losing any of them silently.

A batch (outcomes, results, runs) may hold more bytes than one link frame takes, so it
is split into messages of at most ``MESSAGE_BUDGET`` bytes of data each; the link writer
packs ready messages back into frames. Sizes are estimates: a chunk the link still
refuses as too large is halved until it fits, and a single item that cannot fit at all
is handed to ``too_large`` (which turns it into that task's PayloadTooLarge failure).

``Sender`` adds the waiting: it sends at once while the link (or mailbox) has room and
otherwise keeps the rest, in order, for a background task that waits for room. Every
failure is logged; none is swallowed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import trio

import actors

from ._messages import Outcome, Run, RunTasks, WireError
from ._model import TaskStatus

log = logging.getLogger("fastworker.wire")

T = TypeVar("T")

MESSAGE_BUDGET = 4 * 1024 * 1024
"""Bytes of task data (values, payloads, error text) in one message at most."""

_OVERHEAD = 160  # rough encoded bytes of an item beyond its data


def outcome_size(outcome: Outcome) -> int:
    """Rough encoded size of an Outcome."""
    size = _OVERHEAD + len(outcome.id) + len(outcome.name)
    if outcome.value is not None:
        size += len(outcome.value)
    error = outcome.error
    if error is not None:
        size += len(error.type) + len(error.message) + len(error.traceback)
    return size


def run_tasks(runs: list[Run], last: bool, extra: Any) -> RunTasks:
    """The ``build`` for runs."""
    return RunTasks(runs)


def run_size(run: Run) -> int:
    """Rough encoded size of a Run."""
    return _OVERHEAD + len(run.id) + len(run.name) + len(run.payload)


def chunks(items: Sequence[T], size_of: Callable[[T], int], budget: int) -> list[list[T]]:
    """Split ``items`` (in order) into lists of at most ``budget`` estimated bytes.

    An item bigger than the budget goes alone. A batch that fits is returned as is.
    """
    out: list[list[T]] = []
    current: list[T] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if current and size + item_size > budget:
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current or not out:
        out.append(current)
    return out


def undeliverable(outcome: Outcome, why: str) -> Outcome:
    """``outcome`` as a PayloadTooLarge failure: its result could not be delivered."""
    size = len(outcome.value) if outcome.value is not None else outcome_size(outcome)
    return Outcome(
        outcome.id,
        TaskStatus.FAILURE.value,
        outcome.attempt,
        None,
        WireError(
            "PayloadTooLarge",
            f"the result of task {outcome.name or outcome.id} ({size} bytes) could not be "
            f"delivered: {why}; return a reference (a path, a URL, a database key) instead "
            "of the data",
        ),
        outcome.started_at,
        outcome.completed_at,
        outcome.worker,
        outcome.name,
        False,
    )


def drop_outcome_value(outcome: Outcome, exc: Exception) -> Outcome | None:
    """The ``too_large`` hook for outcomes: a value becomes a PayloadTooLarge failure;
    an outcome with no value that still does not fit loses its traceback."""
    if outcome.value is not None:
        return undeliverable(outcome, str(exc))
    error = outcome.error
    if error is not None and (error.traceback or len(error.message) > 4096):
        return Outcome(
            outcome.id,
            outcome.status,
            outcome.attempt,
            None,
            WireError(error.type, error.message[:4096], ""),
            outcome.started_at,
            outcome.completed_at,
            outcome.worker,
            outcome.name,
            outcome.retryable,
        )
    return None


class Sender(Generic[T]):
    """Sends batches of items to refs as messages that fit, in order, never dropping silently.

    ``build(items, last, extra)`` makes the message for one chunk (``last`` is True for
    the last chunk of a batch, ``extra`` is what ``send_nowait`` was given with it);
    ``too_large(item, exc)`` replaces an item that alone is too large for the link
    (None: drop it); ``on_lost(ref, items, exc)`` hears of items that could not be sent
    (default: a warning); ``what`` names the messages in logs.
    ``budget`` None sends each batch whole (a recipient in this process: no frame to
    fit). ``start(nursery)`` says where sends that wait for room run (without it, a send that
    finds no room is lost, logged).
    """

    def __init__(
        self,
        what: str,
        build: Callable[[list[T], bool, Any], Any],
        size_of: Callable[[T], int],
        too_large: Callable[[T, Exception], T | None],
        *,
        budget: int | None = MESSAGE_BUDGET,
        on_lost: Callable[[actors.ActorRef, list[T], Exception], None] | None = None,
    ) -> None:
        self.what = what
        self.build = build
        self.size_of = size_of
        self.too_large = too_large
        self.budget = budget
        self.on_lost = on_lost
        # Per ref: what waits for room there, in order (one slow watcher never holds
        # back the others), and a task sending it while there is any.
        self._backlogs: dict[actors.ActorRef, deque[tuple[list[T], bool, Any]]] = {}
        self._nursery: trio.Nursery | None = None
        self.messages_sent = 0
        self.split = 0
        self.replaced = 0
        self.waited = 0
        self.lost = 0

    @property
    def backlog(self) -> int:
        """Chunks waiting for room, over every ref."""
        return sum(len(b) for b in self._backlogs.values())

    def start(self, nursery: trio.Nursery) -> None:
        """Where the tasks that send what had to wait for room run."""
        self._nursery = nursery

    def send_nowait(self, ref: actors.ActorRef, items: Sequence[T], extra: Any = None) -> None:
        """Send ``items`` to ``ref``: now where there is room, else as soon as there is."""
        if self.budget is None:  # in process: nothing to fit, no size to estimate
            parts = [list(items)]
        else:
            parts = chunks(items, self.size_of, self.budget)
        if len(parts) > 1:
            self.split += 1
        last = len(parts) - 1
        pending = deque((part, index == last) for index, part in enumerate(parts))
        backlog = self._backlogs.get(ref)
        while pending:
            part, is_last = pending.popleft()
            if backlog is not None:
                backlog.append((part, is_last, extra))
                continue
            try:
                ref.tell_nowait(self.build(part, is_last, extra))
                self.messages_sent += 1
            except actors.MessageTooLarge as exc:
                pending.extendleft(reversed(self._refit(ref, part, is_last, exc)))
            except actors.MailboxFull as exc:
                if self._nursery is None:
                    self._lost(ref, part, exc)
                    continue
                self.waited += 1
                backlog = self._backlogs[ref] = deque([(part, is_last, extra)])
                self._nursery.start_soon(self._drain, ref, backlog)
            except actors.ActorError as exc:
                self._lost(ref, part, exc)

    def _refit(
        self, ref: actors.ActorRef, part: list[T], last: bool, exc: actors.MessageTooLarge
    ) -> list[tuple[list[T], bool]]:
        """What to send instead of a part the link refused as too large."""
        if len(part) > 1:
            half = len(part) // 2
            return [(part[:half], False), (part[half:], last)]
        replacement = self.too_large(part[0], exc) if part else None
        if replacement is None or replacement is part[0]:
            self._lost(ref, part, exc)
            return []
        self.replaced += 1
        log.warning(
            "%s to %r: one item did not fit the link and was replaced: %s", self.what, ref, exc
        )
        return [([replacement], last)]

    async def _drain(
        self, ref: actors.ActorRef, backlog: deque[tuple[list[T], bool, Any]]
    ) -> None:
        try:
            while backlog:
                part, last, extra = backlog[0]
                pending = deque([(part, last)])
                while pending:
                    part, last = pending.popleft()
                    try:
                        await ref.tell(self.build(part, last, extra))
                        self.messages_sent += 1
                    except actors.MessageTooLarge as exc:
                        pending.extendleft(reversed(self._refit(ref, part, last, exc)))
                    except actors.ActorError as exc:
                        self._lost(ref, part, exc)
                backlog.popleft()
        finally:
            if self._backlogs.get(ref) is backlog:
                del self._backlogs[ref]

    def _lost(self, ref: actors.ActorRef, part: list[T], exc: Exception) -> None:
        self.lost += len(part)
        if self.on_lost is not None:
            self.on_lost(ref, part, exc)
        else:
            log.warning("%s to %r: %d items not sent: %s", self.what, ref, len(part), exc)
