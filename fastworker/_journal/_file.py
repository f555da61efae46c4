"""The SQLite file (schema, migration, load, write, compact): blocking code only."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence

from .._errors import ConfigurationError
from .._messages import Outcome, TaskInfo
from .._protocol import JournaledTask
from ._format import (
    _CATALOGUE,
    _SCHEMA,
    _WORKFLOW_SCHEMA,
    FORMAT,
    VERSION,
    JournalError,
    _pack_info,
    _pack_outcome,
    _parts,
    _unpack_info,
    _unpack_outcome,
)

log = logging.getLogger("fastworker.journal")


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
