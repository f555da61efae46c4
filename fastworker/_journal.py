"""The Journal: an SQLite (WAL) write-ahead record of accepted tasks and their results.

With a journal, a submission is acknowledged only once it is on disk; submissions that
arrive together are committed together (group commit: one transaction per batch of
ready messages, in a worker thread, so the event loop never waits on the disk).
Completions and results are recorded too; on start the journal is replayed: unfinished
tasks are queued again (scheduled ones keep their time), results refill the cache.
Results past their TTL are compacted away.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import attrs
import msgpack
import trio

from actors import Actor, Context, Delivery
from actors._ref import Reply

from ._errors import ConfigurationError, FastWorkerError
from ._messages import Outcome, WireError
from ._node import run_blocking

log = logging.getLogger("fastworker.journal")

FORMAT = "fastworker-journal"
VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    eta REAL,
    accepted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    outcome BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at);
"""


class JournalError(FastWorkerError):
    """The journal file cannot be used (foreign, corrupt, or from another version)."""


@attrs.frozen
class JournaledTask:
    """An accepted, unfinished task as recorded."""

    id: str
    name: str
    payload: bytes
    priority: int
    eta: float | None


def _pack_outcome(outcome: Outcome) -> bytes:
    error = outcome.error
    return msgpack.packb(
        [
            outcome.id,
            outcome.status,
            outcome.attempt,
            outcome.value,
            None if error is None else [error.type, error.message, error.traceback],
            outcome.started_at,
            outcome.completed_at,
            outcome.worker,
            outcome.name,
        ],
        use_bin_type=True,
    )


def _unpack_outcome(data: bytes) -> Outcome:
    (task_id, status, attempt, value, error, started, completed, worker, name) = msgpack.unpackb(
        data, raw=False
    )
    return Outcome(
        task_id,
        status,
        attempt,
        value,
        None if error is None else WireError(*error),
        started,
        completed,
        worker,
        name,
        False,
    )


_MAX_PARAMETERS = 30_000
"""Bound parameters per statement (SQLite allows 32,766 since 3.32; 999 before)."""
if sqlite3.sqlite_version_info < (3, 32, 0):
    _MAX_PARAMETERS = 999


def _parts(items: list[Any], per_row: int) -> list[list[Any]]:
    """``items`` in slices small enough for one statement with ``per_row`` parameters each."""
    size = _MAX_PARAMETERS // per_row
    return [items[k : k + size] for k in range(0, len(items), size)]


class JournalFile:
    """The SQLite file itself; every method is blocking (call from a worker thread)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from None
        try:
            # Look before writing anything: a file that is not a journal (another
            # application's database, a text file) must stay byte for byte as it was, so
            # nothing (not even the switch to WAL mode) is written until it passed.
            if self._is_empty():
                self._create()
            else:
                self._check_existing()
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise JournalError(
                f"{path} is not a usable FastWorker journal ({exc}); it was left untouched: "
                "move it away or pass another --journal path"
            ) from None
        except BaseException:
            self.db.close()
            raise

    def _is_empty(self) -> bool:
        """A new (zero-length) file or an SQLite database without any table (read only)."""
        row = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return bool(row[0] == 0)

    def _create(self) -> None:
        # Schema and meta in one transaction: a crash in between cannot leave a file
        # with tables but no meta (which a restart would refuse as foreign).
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            "BEGIN IMMEDIATE;\n"
            + _SCHEMA
            + f"INSERT INTO meta (key, value) VALUES ('format', '{FORMAT}'), "
            f"('version', '{VERSION}');\nCOMMIT;"
        )

    def _check_existing(self) -> None:
        try:
            rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError:
            rows = {}
        if rows.get("format") != FORMAT:
            raise JournalError(
                f"{self.path} is not a FastWorker journal; it was left untouched: move it away "
                "or pass another --journal path"
            )
        if rows.get("version") != str(VERSION):
            raise JournalError(
                f"{self.path} is a FastWorker journal of version {rows.get('version')}, this "
                f"build reads version {VERSION}"
            )
        check = self.db.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise JournalError(
                f"{self.path} is corrupt ({check[0] if check else 'no answer'}); it was left "
                "untouched: move it away (and keep it for recovery)"
            )

    def load(
        self, now: float, max_results: int | None = None
    ) -> tuple[list[JournaledTask], list[Outcome]]:
        """Unfinished tasks (in acceptance order) and unexpired results (oldest first).

        ``max_results`` keeps only the newest ones (what the result cache can hold): the
        table may hold far more (everything within the TTL), and reading it all would
        only fill memory for the cache to evict again.
        """
        tasks = [
            JournaledTask(row[0], row[1], bytes(row[2]), row[3], row[4])
            for row in self.db.execute(
                "SELECT id, name, payload, priority, eta FROM tasks ORDER BY rowid"
            )
        ]
        limit = -1 if max_results is None else max(0, max_results)
        results = [
            _unpack_outcome(bytes(row[0]))
            for row in self.db.execute(
                "SELECT outcome FROM results WHERE expires_at > ? ORDER BY rowid DESC LIMIT ?",
                (now, limit),
            )
        ]
        results.reverse()
        return tasks, results

    def write(
        self,
        accepted: list[JournaledTask],
        finished: list[Outcome],
        ttl: float,
        now: float,
    ) -> None:
        """One transaction: record accepted tasks, move finished ones to results.

        Rows go in multi-row statements (a few per batch, not one per row): sqlite3
        releases the GIL around every statement step, and under load the event loop
        holds it, so each re-acquisition can wait a whole switch interval; per-row
        statements made a 1,000-task commit several times slower next to a busy loop.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for part in _parts(accepted, 6):
                db.execute(
                    "INSERT OR IGNORE INTO tasks (id, name, payload, priority, eta, accepted_at)"
                    " VALUES " + ",".join(["(?, ?, ?, ?, ?, ?)"] * len(part)),
                    [v for t in part for v in (t.id, t.name, t.payload, t.priority, t.eta, now)],
                )
            for part in _parts(finished, 3):
                db.execute(
                    "DELETE FROM tasks WHERE id IN (" + ",".join(["?"] * len(part)) + ")",
                    [o.id for o in part],
                )
                expires = now + ttl
                db.execute(
                    "INSERT OR IGNORE INTO results (id, outcome, expires_at) VALUES "
                    + ",".join(["(?, ?, ?)"] * len(part)),
                    [v for o in part for v in (o.id, _pack_outcome(o), expires)],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def compact(self, now: float) -> int:
        """Delete results past their TTL; returns how many."""
        cursor = self.db.execute("DELETE FROM results WHERE expires_at <= ?", (now,))
        return cursor.rowcount

    def close(self) -> None:
        """Close the file."""
        self.db.close()


# -- the actor ------------------------------------------------------------------------


@attrs.frozen
class Persist:
    """Make these accepted tasks durable, then resolve ``replies`` with their values."""

    tasks: list[JournaledTask]
    replies: list[tuple[Reply, Any]]


@attrs.frozen
class Record:
    """Record these terminal outcomes (no one waits for it)."""

    outcomes: list[Outcome]


@attrs.frozen
class Sync:
    """Answer once everything told to the journal before this is committed (for a drain)."""


class Journal(Actor):
    """Group-commits Persist and Record messages; answers acknowledgements after commit.

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
    ) -> None:
        self.file = file
        self.threads = threads
        self.ttl = ttl
        self.wall = wall
        self.compact_interval = compact_interval
        self.commits = 0
        self.tasks_written = 0
        self.outcomes_written = 0
        self.on_commit: Callable[[float], None] | None = None
        """Called with each commit's duration in seconds (the dashboard's metrics)."""
        self._lock = trio.Lock()

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await run_blocking(self.threads, fn, *args)

    async def started(self, ctx: Context) -> None:
        """Start compaction."""
        ctx.nursery.start_soon(self._compact)

    async def _compact(self) -> None:
        while True:
            await trio.sleep(self.compact_interval)
            async with self._lock:
                dropped = await self._blocking(self.file.compact, self.wall())
            if dropped:
                log.debug("journal: compacted %d expired results", dropped)

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Everything ready is written in one transaction; then acknowledgements go out."""
        accepted: list[JournaledTask] = []
        finished: list[Outcome] = []
        replies: list[tuple[Reply, Any]] = []
        for delivery in batch:
            msg = delivery.message
            if isinstance(msg, Persist):
                accepted.extend(msg.tasks)
                replies.extend(msg.replies)
            elif isinstance(msg, Record):
                finished.extend(msg.outcomes)
            if delivery.reply is not None:
                replies.append((delivery.reply, None))
        try:
            async with self._lock:
                began = time.perf_counter()
                await self._blocking(self.file.write, accepted, finished, self.ttl, self.wall())
                if self.on_commit is not None:
                    self.on_commit(time.perf_counter() - began)
        except Exception as exc:
            log.exception("journal write failed")
            error = FastWorkerError(
                f"the journal could not record the submission ({exc}): it was not accepted"
            )
            for reply, _ in replies:
                reply.fail(error)
            raise
        self.commits += 1
        self.tasks_written += len(accepted)
        self.outcomes_written += len(finished)
        for reply, value in replies:
            reply.resolve(value)


def open_journal_file(path: str) -> JournalFile:
    """Open (or create) a journal; ConfigurationError with a clear message if unusable."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"the journal's directory {directory} does not exist")
    try:
        return JournalFile(path)
    except JournalError as exc:
        raise ConfigurationError(str(exc)) from None
