"""Restart intensity: more than N restarts within T seconds is a crash loop.

A pure, trio-free counter: the caller passes the time (``trio.current_time()`` in the
actor Supervisor, so virtual time in tests). Used by the actor ``Supervisor`` and by
FastWorker's supervisor of subworker processes.
"""

from __future__ import annotations

from collections import deque


class RestartIntensity:
    """Counts restarts in a sliding window of ``within`` seconds.

    ``record(now)`` notes one restart and says whether the limit is exceeded: more than
    ``max_restarts`` restarts whose times are within ``within`` seconds of ``now``.

    Raises:
        ValueError: ``max_restarts`` is negative or ``within`` is not positive.
    """

    __slots__ = ("_times", "max_restarts", "within")

    def __init__(self, max_restarts: int, within: float) -> None:
        if max_restarts < 0 or within <= 0:
            raise ValueError("max_restarts must be >= 0 and within > 0")
        self.max_restarts = max_restarts
        self.within = within
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Note a restart at time ``now``; True if that makes more than ``max_restarts``."""
        times = self._times
        times.append(now)
        while times and times[0] < now - self.within:
            times.popleft()
        return len(times) > self.max_restarts

    @property
    def recent(self) -> int:
        """Restarts in the window as of the last ``record``."""
        return len(self._times)
