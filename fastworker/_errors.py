"""The error tree of FastWorker: every error the package raises derives from FastWorkerError."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._model import TaskResult


class FastWorkerError(Exception):
    """Base of every error raised by fastworker."""


class ConfigurationError(FastWorkerError, ValueError):
    """An option is invalid (bad task options, bad cron string, bad CLI flag value)."""


class InvalidSchedule(ConfigurationError):
    """A cron expression or repeat interval cannot be used; the message says which part."""


class TaskNotRegistered(FastWorkerError, LookupError):
    """No task is registered under that name: check the name and the `tasks=` modules."""


class TaskNotFound(FastWorkerError, LookupError):
    """No task with that id: it was never submitted, or its result expired (result_ttl)."""


class TaskModuleError(FastWorkerError, ImportError):
    """A task module could not be imported; the original error is chained."""


class SubmissionError(FastWorkerError):
    """The control plane refused a submission; the message says why."""


class QueueFull(SubmissionError):
    """The control plane's queue is at max_queue: retry later or add subworkers."""


class PayloadTooLarge(SubmissionError):
    """Arguments or a result exceed the size limit: pass a reference (a path, a key), not data."""


class NotSerializable(SubmissionError, TypeError):
    """Arguments or a result are not msgpack data: None, bool, numbers, str, bytes, list, dict."""


class ShuttingDown(SubmissionError):
    """The control plane is draining and takes no new work."""


class ConnectionFailed(FastWorkerError, ConnectionError):
    """Could not reach the control plane (or the link dropped and did not come back in time)."""


class AuthenticationFailed(ConnectionFailed):
    """The cluster secret was refused (or missing on one side)."""


class TaskError(FastWorkerError):
    """Base of errors that report a task's terminal outcome; ``result`` is the TaskResult."""

    def __init__(self, message: str, result: TaskResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class TaskFailed(TaskError):
    """The task ended in failure; ``result.error`` has the remote type, message and traceback."""


class TaskCancelled(TaskError):
    """The task was cancelled before it finished."""


class TaskTimeout(TaskFailed):
    """The task ran past its ``timeout``."""


class WorkerLost(TaskFailed):
    """The subworker running the task died and the task opted out of redelivery."""


class ResultTimeout(FastWorkerError, TimeoutError):
    """A wait for a task's result passed its ``timeout``; the task itself goes on.

    ``task_id`` is the task waited for: ``result(task_id)`` waits again.
    """

    def __init__(self, message: str, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class JournalWriteFailed(SubmissionError):
    """The journal could not record the submission (disk full, I/O error): it will not run."""
