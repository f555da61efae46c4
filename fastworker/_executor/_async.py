"""The async runner: each ``async def`` attempt runs in the trio loop in its own cancel scope.

Timeout and cancellation interrupt it; its ``finally`` blocks run.
"""

from __future__ import annotations

from typing import Any

import trio

from ._state import Attempt, ExecutorState


class AsyncRunner(ExecutorState):
    """Runs async attempts in the executor's nursery."""

    async def _run_async(self, attempt: Attempt) -> None:
        try:
            await self._step_async(attempt)
        finally:
            self._start_deferred(attempt.run.id)

    @staticmethod
    def attempt_code() -> Any:
        """The code object of the frame that runs an async attempt (its local ``attempt``
        names it): how the loop watchdog tells which task holds the loop."""
        return AsyncRunner._step_async.__code__

    async def _step_async(self, attempt: Attempt) -> None:
        run = attempt.run
        with trio.CancelScope() as scope:
            attempt.scope = scope
            if run.timeout is not None:
                scope.relative_deadline = run.timeout
            try:
                value = await attempt.spec.func(*attempt.args, **attempt.kwargs)
            except Exception as exc:
                self._done(attempt, error=exc)
                return
            self._done(attempt, value=value)
            return
        # The scope swallowed a Cancelled: a cancel request, or else its deadline.
        if attempt.cancel_requested:
            self._cancelled(attempt)
        else:
            self._timed_out(attempt)
