"""Ctrl-C / SIGTERM for the serving commands: the first drains, the second stops now."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

import trio

log = logging.getLogger("fastworker.cli")


class Shutdown:
    """Signal handling: the first SIGINT/SIGTERM drains, the second stops at once."""

    def __init__(self) -> None:
        self.requested = trio.Event()
        self.forced = False

    async def watch(self, stop_now: Callable[[], None], *, task_status: Any) -> None:
        """Watch for signals (start it with ``nursery.start``); ``stop_now`` on the second."""
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for sig in signals:
                if not self.requested.is_set():
                    log.warning(
                        "%s: draining (running tasks get to finish); send it again to stop now",
                        signal.Signals(sig).name,
                    )
                    self.requested.set()
                else:
                    log.warning("second signal: stopping now")
                    self.forced = True
                    stop_now()
