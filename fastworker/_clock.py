"""Wall-clock time derived from trio's clock, so schedules run in virtual time in tests."""

from __future__ import annotations

import time
from datetime import datetime

import trio


class WallClock:
    """POSIX time as ``offset + trio.current_time()``.

    In production the offset pins it to the real clock at start; under pytest-trio's
    autojump clock it advances with virtual time, so an ETA an hour away or a daily cron
    is reached in milliseconds. ``start`` (a timestamp or an aware datetime) sets what
    "now" is when the clock is made, for tests of calendars ("Friday noon").
    """

    def __init__(self, start: float | datetime | None = None) -> None:
        if isinstance(start, datetime):
            if start.tzinfo is None:
                raise ValueError("start must be a timezone-aware datetime")
            start = start.timestamp()
        now = time.time() if start is None else float(start)
        self.offset = now - trio.current_time()

    def now(self) -> float:
        """The current POSIX timestamp."""
        return self.offset + trio.current_time()

    def to_trio(self, timestamp: float) -> float:
        """A POSIX timestamp as a deadline on trio's clock."""
        return timestamp - self.offset
