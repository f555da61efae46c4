"""The journal's file format: schema, version, and how records are packed."""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs
import msgpack

from .._errors import FastWorkerError
from .._messages import Outcome, TaskInfo, WireError

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
