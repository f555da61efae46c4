"""The blocking client's submissions: submit, delay and delay_batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

from .._canvas import Chain, Chord, Group, Signature
from .._client import BatchItem, P, PriorityLike, TaskRef, When
from ._results import ResultsMixin


class SubmittingMixin(ResultsMixin):
    """submit, delay and delay_batch, blocking until the control plane accepted."""

    def submit(
        self,
        task: TaskRef,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        priority: PriorityLike | None = None,
        countdown: float | None = None,
        eta: When | None = None,
        task_id: str | None = None,
        unique_key: str | None = None,
    ) -> str:
        """Submit one task with explicit args and kwargs; its id once accepted.

        The arguments are those of Client.submit.

        Raises:
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
        result: str = self._run(
            "submit",
            task,
            args,
            kwargs,
            priority=priority,
            countdown=countdown,
            eta=eta,
            task_id=task_id,
            unique_key=unique_key,
        )
        return result

    @overload
    def delay(self, task: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> str: ...
    @overload
    def delay(
        self, task: TaskRef, /, *args: Any, priority: PriorityLike | None, **kwargs: Any
    ) -> str: ...
    @overload
    def delay(
        self, task: TaskRef, /, *args: Any, countdown: float | None, **kwargs: Any
    ) -> str: ...
    @overload
    def delay(self, task: TaskRef, /, *args: Any, eta: When | None, **kwargs: Any) -> str: ...
    @overload
    def delay(
        self, task: TaskRef, /, *args: Any, unique_key: str | None, **kwargs: Any
    ) -> str: ...
    @overload
    def delay(
        self, task: str | Signature | Chain | Group | Chord, /, *args: Any, **kwargs: Any
    ) -> str: ...
    def delay(
        self,
        task: TaskRef | Signature | Chain | Group | Chord,
        /,
        *args: Any,
        priority: Any = None,
        countdown: Any = None,
        eta: Any = None,
        **kwargs: Any,
    ) -> str:
        """Submit ``task(*args, **kwargs)``; returns its id once accepted (see Client.delay).

        Raises:
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
        result: str = self._run(
            "delay", task, *args, priority=priority, countdown=countdown, eta=eta, **kwargs
        )
        return result

    def delay_batch(
        self,
        items: Iterable[BatchItem],
        *,
        priority: PriorityLike | None = None,
    ) -> list[str]:
        """Submit many tasks as one all-or-nothing batch; their ids in order.

        Raises:
            ConfigurationError: a malformed item, or one naming no task.
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
        result: list[str] = self._run("delay_batch", list(items), priority=priority)
        return result
