"""A watchdog for the trio loop: an ``async def`` task that blocks (``time.sleep``, a CPU
loop, a blocking socket) stalls everything on its node, heartbeats included.

A trio task bumps a timestamp every ``threshold / 4`` seconds; a thread checks it. When
the loop has not bumped it for ``threshold`` seconds, the thread looks at what the loop's
thread is executing (``sys._current_frames``), names the culprit (the executor's task
attempt, else the innermost function) and logs a warning; when the loop runs again it
logs for how long it was held::

    task block_loop (id 3f2a-1, attempt 1) blocked the event loop for 8.0 s: make it a
    def task or use trio.to_thread

Costs: a few wake-ups a second in the loop, a thread that sleeps. Nothing on the hot path.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import attrs
import trio

log = logging.getLogger("fastworker.watchdog")

DEFAULT_THRESHOLD = 1.0
"""Seconds the loop may stay unresponsive before the watchdog names what holds it."""

ADVICE = "make it a def task or use trio.to_thread"


@attrs.frozen
class Stall:
    """One episode of a blocked loop: what held it, for how long (seconds)."""

    culprit: str
    seconds: float
    ended: bool


def describe_frame(frame: FrameType | None, attempt_code: Any = None) -> str:
    """Name what the frame stack is executing: the executor attempt if any, else the
    innermost function (``name (file:line)``)."""
    innermost = frame
    while frame is not None:
        if attempt_code is not None and frame.f_code is attempt_code:
            attempt = frame.f_locals.get("attempt")
            run = getattr(attempt, "run", None)
            if run is not None:
                return f"task {run.name} (id {run.id}, attempt {run.attempt})"
        frame = frame.f_back
    if innermost is None:
        return "unknown code"
    code = innermost.f_code
    return f"{code.co_name} ({code.co_filename}:{innermost.f_lineno})"


class LoopWatchdog:
    """Notices a stalled trio loop from a thread and names the culprit.

    ``on_stall(Stall)`` is called from the watchdog thread (after logging) for each
    episode: once when noticed (``ended=False``), once when the loop runs again.
    """

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        attempt_code: Any = None,
        on_stall: Callable[[Stall], None] | None = None,
    ) -> None:
        if threshold <= 0:
            raise ValueError("the watchdog threshold must be positive")
        self.threshold = threshold
        self.attempt_code = attempt_code
        self.on_stall = on_stall
        self._beat = time.monotonic()
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self.stalls = 0
        self.longest = 0.0

    async def _ticker(self) -> None:
        interval = self.threshold / 4
        while True:
            self._beat = time.monotonic()
            await trio.sleep(interval)

    def _watch(self) -> None:
        check = self.threshold / 4
        stalled_since: float | None = None
        culprit = ""
        while not self._stop.wait(check):
            beat = self._beat
            now = time.monotonic()
            if stalled_since is not None and beat > stalled_since:
                # The loop runs again: the stall lasted from the last beat before it to
                # the first after it (within a tick).
                seconds = beat - stalled_since
                self.longest = max(self.longest, seconds)
                log.warning("%s blocked the event loop for %.1f s: %s", culprit, seconds, ADVICE)
                self._tell(Stall(culprit, seconds, True))
                stalled_since = None
            if stalled_since is None and now - beat > self.threshold:
                stalled_since = beat
                frame = sys._current_frames().get(self._loop_thread)
                try:
                    culprit = describe_frame(frame, self.attempt_code)
                finally:
                    del frame
                self.stalls += 1
                log.warning(
                    "the event loop has been blocked for %.1f s by %s: %s; heartbeats and "
                    "every other task here wait for it",
                    now - beat,
                    culprit,
                    ADVICE,
                )
                self._tell(Stall(culprit, now - beat, False))

    def _tell(self, stall: Stall) -> None:
        if self.on_stall is not None:
            try:
                self.on_stall(stall)
            except Exception:
                log.exception("the watchdog's on_stall hook failed")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[LoopWatchdog]:
        """Watch the current trio loop for the duration of the block."""
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        thread = threading.Thread(target=self._watch, name="fastworker-loop-watchdog", daemon=True)
        thread.start()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ticker)
                try:
                    yield self
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._stop.set()
            thread.join(timeout=1.0)
