"""The Client: every part together, plus call() (submit and wait for the value)."""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, overload

import trio

from .._canvas import FLOWS, Chain, Chord, Group, Signature
from .._errors import ConfigurationError, ResultTimeout
from .._messages import Submission, Watch
from ._outcomes import raise_for, to_result
from ._submitting import SubmittingMixin
from ._types import P, PriorityLike, R, TaskRef, When


class Client(SubmittingMixin):
    """A connection to a FastWorker cluster (from ``open_client``).

    Every call is safe to make from many tasks at once. When the link drops, waiting
    calls resume after the reconnect, and new calls wait up to ``reconnect_timeout``
    before raising ConnectionFailed.
    """

    @overload
    async def call(
        self, task: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...
    @overload
    async def call(self, task: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    async def call(
        self, task: TaskRef, /, *args: Any, priority: PriorityLike | None, **kwargs: Any
    ) -> Any: ...
    @overload
    async def call(
        self, task: TaskRef, /, *args: Any, countdown: float | None, **kwargs: Any
    ) -> Any: ...
    @overload
    async def call(self, task: TaskRef, /, *args: Any, eta: When | None, **kwargs: Any) -> Any: ...
    @overload
    async def call(
        self, task: TaskRef, /, *args: Any, unique_key: str | None, **kwargs: Any
    ) -> Any: ...
    @overload
    async def call(
        self, task: str | Signature | Chain | Group | Chord, /, *args: Any, **kwargs: Any
    ) -> Any: ...
    async def call(
        self,
        task: TaskRef | Signature | Chain | Group | Chord,
        /,
        *args: Any,
        priority: Any = None,
        countdown: Any = None,
        eta: Any = None,
        unique_key: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Submit ``task(*args, **kwargs)`` (or a workflow), wait for it, return its value.

        Called with the ``@task`` function, the arguments are type-checked and the
        result type is the function's. ``priority``, ``countdown``, ``eta`` and
        ``unique_key`` are as for ``delay``. The caller owns the timeout.

        Returns:
            The task's (or the workflow's) return value.

        Raises:
            TaskFailed: the task failed (TaskTimeout, WorkerLost); the TaskResult is on
                the exception's ``result`` (a failed workflow's error is its failing
                member's).
            TaskCancelled: the task was cancelled.
            ConfigurationError: a bad option or task reference (not a name or a ``@task``
                function; countdown and eta both; options with a workflow; a bad
                priority or unique_key).
            NotSerializable: the arguments are not msgpack data.
            PayloadTooLarge: the arguments are over ``max_payload`` (or the control
                plane's frame limit).
            TaskNotRegistered: neither the control plane nor any worker has the task.
            QueueFull: the control plane's queue is at ``max_queue``.
            ShuttingDown: the control plane is draining.
            JournalWriteFailed: the control plane could not journal the submission.
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``, or the client closed while waiting.
            FastWorkerError: the control plane refused it for another reason (the
                message says which).
        """
        if isinstance(task, FLOWS):  # a workflow: its value, or its failing member's error
            if priority is not None or countdown is not None or eta is not None or unique_key:
                raise ConfigurationError(
                    "call() of a workflow takes no options: set them on its members, "
                    "sig(task, ...).set(priority=...)"
                )
            return await self._call_flow(task, args, kwargs)
        sub = self._submission(task, args, kwargs, priority, countdown, eta, None, unique_key)
        return await self._call(sub, None)

    async def _call(self, sub: Submission, timeout: float | None) -> Any:  # noqa: ASYNC109
        """Submit and wait (ResultTimeout after ``timeout`` seconds, if given).

        Raises:
            ResultTimeout: no result within ``timeout`` seconds (the task goes on).
        """
        task_id = sub.id
        future = self._waiter(task_id)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                ids = await self._submit([sub], watch=True)
                if ids and ids[0] != sub.id:  # a unique key: wait for the existing task
                    self._drop_waiter(task_id, future)
                    task_id = ids[0]
                    future = self._waiter(task_id)
                    await self._tell(Watch([task_id]))
                outcome = await future.wait()
        finally:
            self._drop_waiter(task_id, future)
        if scope.cancelled_caught:
            raise ResultTimeout(
                f"no result for task {sub.name} ({task_id}) within {timeout}s; it goes on: "
                "result(task_id) waits again",
                task_id,
            )
        result = to_result(outcome)
        raise_for(result)
        return result.value

    async def _call_flow(
        self, flow: Signature | Chain | Group | Chord, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        flow_id = self.new_id()
        future = self._waiter(flow_id)
        try:
            await self._delay_flow(flow, args, kwargs, None, None, None, True, flow_id)
            outcome = await future.wait()
        finally:  # also when cancelled while waiting: no waiter left behind
            self._drop_waiter(flow_id, future)
        result = to_result(outcome)
        raise_for(result)
        return result.value
