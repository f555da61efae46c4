"""Translations: a task reference to its name (``_canvas.task_name``, shared with
``sig``), a wire Outcome to the public TaskResult (and to the error it raises), and an
actor-layer error to the FastWorker error tree."""

from __future__ import annotations

import actors

from .._canvas import task_name
from .._errors import (
    FastWorkerError,
    JournalWriteFailed,
    NotSerializable,
    PayloadTooLarge,
    QueueFull,
    ShuttingDown,
    TaskCancelled,
    TaskFailed,
    TaskNotRegistered,
    TaskTimeout,
    WorkerLost,
)
from .._messages import Outcome
from .._model import ErrorInfo, TaskResult, TaskStatus
from .._serialization import unpack

_SUBMISSION_ERRORS: dict[str, type[FastWorkerError]] = {
    "TaskNotRegistered": TaskNotRegistered,
    "QueueFull": QueueFull,
    "ShuttingDown": ShuttingDown,
    "PayloadTooLarge": PayloadTooLarge,
    "NotSerializable": NotSerializable,
    "JournalWriteFailed": JournalWriteFailed,
}


def to_result(outcome: Outcome) -> TaskResult:
    """A wire Outcome as the public TaskResult (the value unpacked)."""
    error = outcome.error
    return TaskResult(
        task_id=outcome.id,
        status=TaskStatus(outcome.status),
        value=unpack(outcome.value) if outcome.value is not None else None,
        error=ErrorInfo(error.type, error.message, error.traceback) if error else None,
        started_at=outcome.started_at,
        completed_at=outcome.completed_at,
        attempts=outcome.attempt,
        worker=outcome.worker,
        name=outcome.name,
    )


def raise_for(result: TaskResult) -> None:
    """Raise TaskFailed (or TaskTimeout, WorkerLost) or TaskCancelled for a non-success.

    Raises:
        TaskCancelled: the task was cancelled.
        TaskTimeout: the task ran past its timeout.
        WorkerLost: the task's worker died and it was not redelivered.
        TaskFailed: the task failed otherwise.
    """
    if result.status is TaskStatus.SUCCESS:
        return
    error = result.error
    text = f"task {result.name or result.task_id} ({result.task_id}) "
    if result.status is TaskStatus.CANCELLED:
        raise TaskCancelled(text + "was cancelled", result)
    detail = f"{error.type}: {error.message}" if error else "failed"
    cls: type[TaskFailed] = TaskFailed
    if error is not None and error.type == "TaskTimeout":
        cls = TaskTimeout
    elif error is not None and error.type == "WorkerLost":
        cls = WorkerLost
    raise cls(text + f"failed: {detail}", result)


def translate(exc: actors.ActorError) -> FastWorkerError:
    """The FastWorker error for an actor-layer error raised by a request."""
    if isinstance(exc, actors.RemoteError):
        cls = _SUBMISSION_ERRORS.get(exc.type_name)
        if cls is not None:
            return cls(exc.message)
        return FastWorkerError(f"the control plane refused the request: {exc}")
    if isinstance(exc, actors.MessageTooLarge):
        return PayloadTooLarge(str(exc))
    return FastWorkerError(f"the control plane refused the request: {exc}")


__all__ = ["raise_for", "task_name", "to_result", "translate"]
