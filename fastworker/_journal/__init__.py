"""The Journal: an SQLite (WAL) write-ahead record of accepted tasks and their results.

With a journal, a submission is acknowledged only once it is on disk; submissions that
arrive together are committed together (group commit: one transaction per batch of
ready messages, in a worker thread, so the event loop never waits on the disk).
Completions and results are recorded too; on start the journal is replayed: unfinished
tasks are queued again (scheduled ones keep their time), results refill the cache.
Results past their TTL are compacted away.

Split into the file format (``_format``), the blocking SQLite file (``_file``) and the
Journal actor (``_actor``); this module re-exports the names the rest of the code uses.
"""

from __future__ import annotations

from .._protocol import (
    Announce,
    Durable,
    JournaledTask,
    Lost,
    NotDurable,
    Persist,
    Record,
    Started,
    Sync,
)
from ._actor import MAX_UNRECORDED, Journal, describe_failure
from ._file import JournalFile, open_journal_file
from ._format import FORMAT, VERSION, JournalError

__all__ = [
    "FORMAT",
    "MAX_UNRECORDED",
    "VERSION",
    "Announce",
    "Durable",
    "Journal",
    "JournalError",
    "JournalFile",
    "JournaledTask",
    "Lost",
    "NotDurable",
    "Persist",
    "Record",
    "Started",
    "Sync",
    "describe_failure",
    "open_journal_file",
]
