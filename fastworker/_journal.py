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
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import msgpack
import trio

from actors import Actor, ActorRef, Context, Delivery
from actors._ref import Reply

from ._errors import ConfigurationError, FastWorkerError, JournalWriteFailed
from ._messages import Outcome, RunTasks, TaskInfo, WireError
from ._node import run_blocking
from ._protocol import (
    Announce,
    Durable,
    JournaledTask,
    Lost,
    NotDurable,
    Persist,
    Record,
    Started,
    Sync,  # noqa: F401
)

log = logging.getLogger("fastworker.journal")

FORMAT = "fastworker-journal"
VERSION = 2
"""2 added the attempts, losses and running columns of ``tasks`` (1 is migrated in place)."""

_CATALOGUE = """
CREATE TABLE IF NOT EXISTS catalogue (name TEXT PRIMARY KEY, info BLOB NOT NULL);
"""
"""Every task name a worker ever announced, with its options (routing remembers them)."""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    eta REAL,
    accepted_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    losses INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    unique_key TEXT
);
CREATE TABLE IF NOT EXISTS results (
    id TEXT PRIMARY KEY,
    outcome BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at);
"""
    + _CATALOGUE
)

# -- workflows: the graph of each unfinished workflow (its members are rows of tasks and
# results like any task's; a workflow's row goes when its own result is recorded) --
_WORKFLOW_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    nodes BLOB NOT NULL,
    accepted_at REAL NOT NULL
);
"""


class JournalError(FastWorkerError):
    """The journal file cannot be used (foreign, corrupt, or from another version)."""


def _pack_info(info: TaskInfo) -> bytes:
    return msgpack.packb(attrs.astuple(info), use_bin_type=True)


def _unpack_info(data: bytes) -> TaskInfo:
    return TaskInfo(*msgpack.unpackb(data, raw=False))


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
                self.db.executescript(_WORKFLOW_SCHEMA)  # journals made before workflows
                self._upgrade()
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
            + _WORKFLOW_SCHEMA
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
        if rows.get("version") == "1":
            self._migrate_from_1()
            rows["version"] = str(VERSION)
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

    def _upgrade(self) -> None:
        """Add what journals written before routing lack (unique keys, the catalogue)."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(tasks)")}
        if "unique_key" not in columns:
            self.db.execute("ALTER TABLE tasks ADD COLUMN unique_key TEXT")
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master")}
        if "catalogue" not in tables:
            self.db.executescript(_CATALOGUE)

    def catalogue(self) -> list[TaskInfo]:
        """Every task name workers ever announced, with the options last announced."""
        return [
            _unpack_info(bytes(row[0]))
            for row in self.db.execute("SELECT info FROM catalogue ORDER BY name")
        ]

    def _migrate_from_1(self) -> None:
        """Add version 2's columns (attempts, losses, running) in one transaction."""
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            "BEGIN IMMEDIATE;\n"
            "ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;\n"
            "ALTER TABLE tasks ADD COLUMN losses INTEGER NOT NULL DEFAULT 0;\n"
            "ALTER TABLE tasks ADD COLUMN running INTEGER NOT NULL DEFAULT 0;\n"
            f"UPDATE meta SET value = '{VERSION}' WHERE key = 'version';\n"
            "COMMIT;"
        )

    def load(
        self, now: float, max_results: int | None = None
    ) -> tuple[list[JournaledTask], list[Outcome]]:
        """Unfinished tasks (in acceptance order) and unexpired results (oldest first).

        ``max_results`` keeps only the newest ones (what the result cache can hold): the
        table may hold far more (everything within the TTL), and reading it all would
        only fill memory for the cache to evict again.
        """
        # A task marked running in this process at the crash may have caused it: that
        # counts as a worker lost while it was in flight (so a poison cannot crash every
        # restart forever).
        # The count is written back at once (and the mark cleared), so it adds up across
        # any number of restarts.
        self.db.execute("UPDATE tasks SET losses = losses + 1, running = 0 WHERE running = 1")
        tasks = [
            JournaledTask(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6], row[7])
            for row in self.db.execute(
                "SELECT id, name, payload, priority, eta, attempts, losses, unique_key"
                " FROM tasks ORDER BY rowid"
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

    def load_workflows(self) -> list[tuple[str, bytes, list[Outcome]]]:
        """Unfinished workflows (in acceptance order): id, nodes, their members' results.

        Members' results are read whatever ``load``'s limit: a workflow needs them all.
        """
        flows = []
        for flow_id, nodes in self.db.execute(
            "SELECT id, nodes FROM workflows ORDER BY rowid"
        ).fetchall():
            # Member ids are "<flow id>:<index>": one range of the results' key.
            results = [
                _unpack_outcome(bytes(row[0]))
                for row in self.db.execute(
                    "SELECT outcome FROM results WHERE id >= ? AND id < ?",
                    (flow_id + ":", flow_id + ";"),
                )
            ]
            flows.append((flow_id, bytes(nodes), results))
        return flows

    def write(
        self,
        accepted: list[JournaledTask],
        finished: list[Outcome],
        ttl: float,
        now: float,
        started: Sequence[str] = (),
        lost: Sequence[tuple[str, int, int]] = (),
        flows: list[tuple[str, bytes]] | None = None,
        catalogue: Sequence[TaskInfo] = (),
    ) -> None:
        """One transaction: record accepted tasks, move finished ones to results.

        ``started`` are tasks about to run in this process (marked running);
        ``lost`` are (id, attempts, losses) of tasks whose worker was lost.

        Rows go in multi-row statements (a few per batch, not one per row): sqlite3
        releases the GIL around every statement step, and under load the event loop
        holds it, so each re-acquisition can wait a whole switch interval; per-row
        statements made a 1,000-task commit several times slower next to a busy loop.
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if catalogue:
                db.executemany(
                    "INSERT OR REPLACE INTO catalogue (name, info) VALUES (?, ?)",
                    [(info.name, _pack_info(info)) for info in catalogue],
                )
            for part in _parts(list(started), 1):
                db.execute(
                    "UPDATE tasks SET running = 1 WHERE id IN ("
                    + ",".join(["?"] * len(part))
                    + ")",
                    part,
                )
            if lost:
                db.executemany(
                    "UPDATE tasks SET attempts = ?, losses = ?, running = 0 WHERE id = ?",
                    [(attempts, losses, task_id) for task_id, attempts, losses in lost],
                )
            for part in _parts(accepted, 7):
                db.execute(
                    "INSERT OR IGNORE INTO tasks"
                    " (id, name, payload, priority, eta, accepted_at, unique_key)"
                    " VALUES " + ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(part)),
                    [
                        v
                        for t in part
                        for v in (t.id, t.name, t.payload, t.priority, t.eta, now, t.unique_key)
                    ],
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
            self._write_workflows(flows or [], finished, now)
            db.execute("COMMIT")
        except BaseException:
            # SQLite rolls back by itself on some errors (disk full): a second ROLLBACK
            # would fail and hide the real reason.
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.debug("journal rollback failed: %s", exc)
            raise

    def _write_workflows(
        self, flows: list[tuple[str, bytes]], finished: list[Outcome], now: float
    ) -> None:
        """Record accepted workflows; drop those whose own result is in ``finished``."""
        db = self.db
        for part in _parts(flows, 3):
            db.execute(
                "INSERT OR IGNORE INTO workflows (id, nodes, accepted_at) VALUES "
                + ",".join(["(?, ?, ?)"] * len(part)),
                [v for flow_id, nodes in part for v in (flow_id, nodes, now)],
            )
        if self._workflows_possible(flows):
            for part in _parts(finished, 1):
                db.execute(
                    "DELETE FROM workflows WHERE id IN (" + ",".join(["?"] * len(part)) + ")",
                    [o.id for o in part],
                )

    def _workflows_possible(self, flows: list[tuple[str, bytes]]) -> bool:
        """False while the table is known to be empty (skips a delete per commit)."""
        if flows:
            self._has_workflows = True
        elif getattr(self, "_has_workflows", None) is None:
            row = self.db.execute("SELECT 1 FROM workflows LIMIT 1").fetchone()
            self._has_workflows = row is not None
        return bool(self._has_workflows)

    def compact(self, now: float) -> int:
        """Delete results past their TTL; returns how many."""
        cursor = self.db.execute("DELETE FROM results WHERE expires_at <= ?", (now,))
        return cursor.rowcount

    def close(self) -> None:
        """Close the file."""
        self.db.close()


# -- the actor ------------------------------------------------------------------------


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
                await self._blocking(self.file.write, accepted, finished, self.ttl, self.wall())
                if self.on_commit is not None:
                    self.on_commit(time.perf_counter() - began)
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


def open_journal_file(path: str) -> JournalFile:
    """Open (or create) a journal; ConfigurationError with a clear message if unusable."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ConfigurationError(f"the journal's directory {directory} does not exist")
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        raise ConfigurationError(
            f"the journal {path} is on a read-only file system: the journal must write; "
            "remount it read-write or pass a --journal path on a writable disk"
        )
    if not os.access(directory, os.W_OK):
        raise ConfigurationError(
            f"the journal's directory {directory} is not writable by this user (the journal "
            "keeps its write-ahead files beside the database): fix its permissions or pass "
            "another --journal path"
        )
    try:
        return JournalFile(path)
    except JournalError as exc:
        raise ConfigurationError(str(exc)) from None
