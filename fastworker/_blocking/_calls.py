"""The BlockingClient: every part together, plus call() (submit and wait for the value)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, overload

import trio

from .._canvas import FLOWS, Chain, Chord, Group, Signature
from .._client import P, PriorityLike, R, TaskRef, When
from .._errors import ResultTimeout
from ._connection import seconds
from ._submitting import SubmittingMixin


class BlockingClient(SubmittingMixin):
    """A client whose methods block the calling thread (from ``fastworker.connect()``).

    Safe to share between threads. Use it with ``with`` or keep it for the life of the
    process; ``close()`` ends it. ``timeout=`` on the waiting calls raises
    ResultTimeout (also a TimeoutError); the task itself goes on.
    """

    @overload
    def call(
        self, task: Callable[P, Coroutine[Any, Any, R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...
    @overload
    def call(self, task: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def call(
        self, task: TaskRef, /, *args: Any, timeout: float | None, **kwargs: Any
    ) -> Any: ...
    @overload
    def call(
        self, task: TaskRef, /, *args: Any, priority: PriorityLike | None, **kwargs: Any
    ) -> Any: ...
    @overload
    def call(
        self, task: TaskRef, /, *args: Any, countdown: float | None, **kwargs: Any
    ) -> Any: ...
    @overload
    def call(self, task: TaskRef, /, *args: Any, eta: When | None, **kwargs: Any) -> Any: ...
    @overload
    def call(
        self, task: TaskRef, /, *args: Any, unique_key: str | None, **kwargs: Any
    ) -> Any: ...
    @overload
    def call(
        self, task: str | Signature | Chain | Group | Chord, /, *args: Any, **kwargs: Any
    ) -> Any: ...
    def call(
        self,
        task: TaskRef | Signature | Chain | Group | Chord,
        /,
        *args: Any,
        timeout: Any = None,
        priority: Any = None,
        countdown: Any = None,
        eta: Any = None,
        unique_key: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Submit ``task(*args, **kwargs)``, wait for it, return its value.

        Raises:
            ResultTimeout: no result within ``timeout`` seconds (the task goes on;
                ``result(exc.task_id)`` waits again).
            TaskFailed: the task failed (TaskTimeout, WorkerLost); the TaskResult is on
                the exception's ``result``.
            TaskCancelled: the task was cancelled.
            ConfigurationError: a bad option or task reference.
            NotSerializable: the arguments are not msgpack data.
            PayloadTooLarge: the arguments are over ``max_payload``.
            TaskNotRegistered: neither the control plane nor any worker has the task.
            QueueFull: the control plane's queue is at ``max_queue``.
            ShuttingDown: the control plane is draining.
            JournalWriteFailed: the control plane could not journal the submission.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        portal, client = self._connected()
        if isinstance(task, FLOWS):  # a workflow: Client.call, under the timeout

            async def run_flow() -> Any:
                with trio.move_on_after(seconds(timeout)):
                    return await client.call(task, *args, **kwargs)
                raise ResultTimeout(f"the workflow is not finished after {timeout}s; it goes on")

            return portal.run(run_flow)
        sub = client._submission(task, args, kwargs, priority, countdown, eta, None, unique_key)
        return portal.run(client._call, sub, timeout)
