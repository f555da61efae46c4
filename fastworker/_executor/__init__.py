"""The Executor actor: runs task attempts and reports their outcomes in batches.

The story, one module per part:

- ``_actor``: the actor; takes runs, starts attempts, answers redeliveries (adopting a
  run still in progress, reusing a remembered success) and drains.
- ``_async``: ``async def`` tasks run in the trio loop, each in its own cancel scope.
- ``_sync``: sync tasks run in worker threads, trivial ones several per hand-off.
- ``_backlog``: with ``prefetch``, attempts waiting beyond the slots, in priority order.
- ``_reporting``: outcomes finished together are reported together; failures logged.
- ``_memory``: pure, trio-free: the failure-log rate limit and the recent successes.
- ``_state``: the attempt, the statistics, and the state the parts share.

This module re-exports the names the rest of the code uses.
"""

from __future__ import annotations

from ._actor import Executor
from ._memory import (
    FAILURE_LOG_WINDOW,
    RECENT_BYTES,
    RECENT_ENTRIES,
    RECENT_TTL,
    FailureLog,
    RecentSuccesses,
)
from ._state import Attempt, ExecutorStatistics, GiveBack, Report, wire_error
from ._sync import FAST_TASK, THREAD_BUDGET

_Attempt = Attempt
_error = wire_error

__all__ = [
    "FAILURE_LOG_WINDOW",
    "FAST_TASK",
    "RECENT_BYTES",
    "RECENT_ENTRIES",
    "RECENT_TTL",
    "THREAD_BUDGET",
    "Attempt",
    "Executor",
    "ExecutorStatistics",
    "FailureLog",
    "GiveBack",
    "RecentSuccesses",
    "Report",
]
