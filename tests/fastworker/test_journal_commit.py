"""One journal commit is one write of the file (one transaction), timed once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import trio

import actors
from fastworker._journal import Journal, JournaledTask, Persist, open_journal_file


async def test_a_commit_writes_the_file_once(tmp_path: Path) -> None:
    """A batch holding a submission is written in a single transaction (it was written
    twice: a first transaction with part of the batch, then again with all of it), and
    the dashboard's commit timer hears of it once."""
    file = open_journal_file(str(tmp_path / "journal.db"))
    writes: list[tuple[Any, ...]] = []
    write = file.write

    def counting_write(*args: Any) -> None:
        writes.append(args)
        write(*args)

    file.write = counting_write  # type: ignore[method-assign]
    journal = Journal(file, 60.0, time.time, threads=False)
    timed: list[float] = []
    journal.on_commit = timed.append
    try:
        async with actors.open_actor_system() as system:
            ref = await system.spawn("journal", lambda: journal)
            task = JournaledTask("t1", "job", b"\x90", 2, None)
            with trio.fail_after(10):
                await ref.ask(Persist([task], []))
    finally:
        file.close()
    assert journal.commits == 1
    assert len(writes) == 1, f"{len(writes)} writes for one commit"
    assert writes[0][0] == [task]
    assert len(timed) == 1
