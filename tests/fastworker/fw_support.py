"""Helpers shared by the fastworker tests (not tests themselves)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import trio
import trio.testing
from sample_tasks import Recorder

import fastworker


async def follow_events(client: fastworker.Client, recorder: Recorder) -> None:
    """Append every event the client receives to ``recorder`` until cancelled."""
    async for event in client.events():
        recorder.append(event)


async def start_following(nursery: trio.Nursery, client: fastworker.Client) -> Recorder:
    """Start following the client's events; returns once the subscription has been sent."""
    recorder = Recorder()
    nursery.start_soon(follow_events, client, recorder)
    await trio.testing.wait_all_tasks_blocked()
    assert client._event_channels, "the events() consumer did not subscribe"
    return recorder


async def wait_for_event(recorder: Recorder, **fields: Any) -> Any:
    """Wait until an event whose attributes match ``fields`` was recorded; return it."""
    seen = 0
    while True:
        items = await recorder.wait_for(seen + 1)
        for event in items[seen:]:
            if all(getattr(event, key) == value for key, value in fields.items()):
                return event
        seen = len(items)


def statuses_of(recorder: Recorder, task_id: str) -> list[str]:
    """The statuses of the task events recorded for ``task_id``, in order."""
    return [e.status for e in recorder.items if e.kind == "task" and e.id == task_id]


def journal_rows(path: Path, table: str) -> list[str]:
    """The ids in ``table`` of the journal at ``path``, read through a separate connection."""
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute(f"SELECT id FROM {table} ORDER BY rowid")]
    finally:
        db.close()
