"""The Journal actor: group commit, refusals with the real reason, retries of what failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import trio

from actors import Actor, ActorRef, Context, Delivery, Reply

from .._errors import JournalWriteFailed
from .._messages import Outcome, RunTasks, TaskInfo
from .._node import run_blocking
from .._protocol import (
    Announce,
    Durable,
    JournaledTask,
    Lost,
    NotDurable,
    Persist,
    Record,
    Started,
)
from ._file import JournalFile

log = logging.getLogger("fastworker.journal")


MAX_UNRECORDED = 100_000
"""Outcomes kept in memory to record again while the journal cannot write."""


def describe_failure(exc: BaseException, path: str) -> str:
    """A journal write error as a sentence that says what to do."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "disk is full" in lowered or "disk full" in lowered:
        return f"journal: {text} ({path}): free disk space; it recovers by itself"
    if "readonly" in lowered or "read-only" in lowered:
        return (
            f"journal: {text} ({path}): the file or its file system is read-only; "
            "make it writable or pass another --journal path"
        )
    return f"journal: {text} ({path})"


class Journal(Actor):
    """Group-commits journal messages; answers acknowledgements after commit.

    A failed commit (disk full, I/O error, read-only file system) refuses exactly the
    submissions in it with the real reason; outcomes and loss marks that could not be
    written are kept (bounded) and written with the next commit, so the journal
    recovers when the disk does. It never crashes the control plane.

    ``wall`` gives POSIX time (the cluster's WallClock), so TTLs agree with the cache.
    """

    batch_limit = 100_000

    def __init__(
        self,
        file: JournalFile,
        ttl: float,
        wall: Callable[[], float],
        compact_interval: float = 60.0,
        threads: bool = True,
        retry_interval: float = 1.0,
    ) -> None:
        self.file = file
        self.threads = threads
        self.ttl = ttl
        self.wall = wall
        self.compact_interval = compact_interval
        self.retry_interval = retry_interval
        self.commits = 0
        self.failures = 0
        self.tasks_written = 0
        self.outcomes_written = 0
        self.on_commit: Callable[[float], None] | None = None
        """Called with each commit's duration in seconds (the dashboard's metrics)."""
        self.last_error: str | None = None
        self._unrecorded: list[Outcome] = []
        self._unrecorded_lost: list[tuple[str, int, int]] = []
        self._unrecorded_catalogue: list[TaskInfo] = []
        self._lock = trio.Lock()

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_blocking(self.threads, fn, *args)

    async def started(self, ctx: Context) -> None:
        """Start compaction and the retry of writes that failed."""
        ctx.nursery.start_soon(self._compact)
        ctx.nursery.start_soon(self._retry, ctx.self)

    async def _compact(self) -> None:
        while True:
            await trio.sleep(self.compact_interval)
            try:
                async with self._lock:
                    dropped = await self._blocking(self.file.compact, self.wall())
            except Exception as exc:
                log.warning("journal: compaction failed: %s", exc)
                continue
            if dropped:
                log.debug("journal: compacted %d expired results", dropped)

    async def _retry(self, me: ActorRef) -> None:
        while True:
            await trio.sleep(self.retry_interval)
            if self._unrecorded or self._unrecorded_lost:
                me.tell_nowait(Record([]))

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Everything ready is written in one transaction; then acknowledgements go out."""
        accepted: list[JournaledTask] = []
        finished: list[Outcome] = self._unrecorded
        lost: list[tuple[str, int, int]] = self._unrecorded_lost
        replies: list[tuple[Reply, Any]] = []
        catalogue: list[TaskInfo] = self._unrecorded_catalogue
        syncs: list[Reply] = []
        notify: list[tuple[ActorRef, list[str]]] = []
        started: list[str] = []
        forwards: list[tuple[ActorRef, RunTasks]] = []
        flows: list[tuple[str, bytes]] = []
        for delivery in batch:
            msg = delivery.message
            kind = type(msg)
            if kind is Announce:
                catalogue.extend(msg.infos)
            elif kind is Persist:
                accepted.extend(msg.tasks)
                replies.extend(msg.replies)
                flows.extend(msg.flows)
                if msg.notify is not None and msg.tasks:
                    notify.append((msg.notify, [t.id for t in msg.tasks]))
            elif kind is Record:
                finished.extend(msg.outcomes)
            elif kind is Started:
                started.extend(msg.ids)
                forwards.append((msg.executor, msg.runs))
            elif kind is Lost:
                lost.extend(msg.losses)
            if delivery.reply is not None:
                syncs.append(delivery.reply)
        self._unrecorded, self._unrecorded_lost = [], []
        self._unrecorded_catalogue = []
        try:
            async with self._lock:
                began = time.perf_counter()
                await self._blocking(
                    self.file.write,
                    accepted,
                    finished,
                    self.ttl,
                    self.wall(),
                    started,
                    lost,
                    flows,
                    catalogue,
                )
                if self.on_commit is not None:
                    self.on_commit(time.perf_counter() - began)
        except Exception as exc:
            self._unrecorded_catalogue = catalogue  # names are few: kept for the next commit
            self._failed(exc, accepted, finished, lost, replies, syncs, notify)
        else:
            if self.last_error is not None:
                log.warning("journal: writing again (%s is over)", self.last_error)
                self.last_error = None
            self.commits += 1
            self.tasks_written += len(accepted)
            self.outcomes_written += len(finished)
            for reply, value in replies:
                reply.resolve(value)
            for reply in syncs:
                reply.resolve(None)
            for ref, ids in notify:
                ref.tell_nowait(Durable(ids))
        # A run is started even if its mark failed: the task was accepted, and a full
        # disk must not stop the work (only its crash protection is weaker meanwhile).
        for ref, runs in forwards:
            ref.tell_nowait(runs)

    def _failed(
        self,
        exc: Exception,
        accepted: list[JournaledTask],
        finished: list[Outcome],
        lost: list[tuple[str, int, int]],
        replies: list[tuple[Reply, Any]],
        syncs: list[Reply],
        notify: list[tuple[ActorRef, list[str]]],
    ) -> None:
        reason = describe_failure(exc, self.file.path)
        self.failures += 1
        if reason != self.last_error:
            log.error("%s; refusing submissions until it can write again", reason)
            self.last_error = reason
        error = JournalWriteFailed(
            f"{reason}: the submission was not accepted and will not run; retry later"
        )
        for reply, _ in replies:
            reply.fail(error)
        for reply in syncs:
            reply.fail(JournalWriteFailed(reason))
        for ref, ids in notify:
            ref.tell_nowait(NotDurable(ids, str(error)))
        # Outcomes and loss marks are written with the next commit (bounded).
        if len(finished) > MAX_UNRECORDED:
            log.error(
                "journal: %d outcomes could not be recorded and are dropped from the journal "
                "(a restart runs those tasks again)",
                len(finished) - MAX_UNRECORDED,
            )
            finished = finished[-MAX_UNRECORDED:]
        self._unrecorded = finished
        self._unrecorded_lost = lost[-MAX_UNRECORDED:]
        if accepted:
            log.warning("journal: refused %d submissions: %s", len(accepted), reason)
