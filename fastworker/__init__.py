"""FastWorker: a brokerless, actor-model task queue for Python, built on trio.

Public API::

    from fastworker import task, Priority, TaskStatus, TaskResult, TaskFailed, TaskCancelled

    @task
    def add(x: int, y: int) -> int: ...

    async with fastworker.open_client(url) as client:   # under trio or asyncio
        value = await client.call(add, 1, 2)

    client = fastworker.connect(url)                     # threads and sync code
    value = client.call(add, 1, 2, timeout=30.0)
"""

from ._blocking import BlockingClient, connect
from ._canvas import Chain, Chord, Group, Signature, chain, chord, group, sig
from ._client import Client, ClientStatistics
from ._client_settings import ClientSettings
from ._control_plane_node import ControlPlaneNode, open_control_plane, run_control_plane
from ._errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    FastWorkerError,
    InvalidSchedule,
    JournalWriteFailed,
    NotSerializable,
    PayloadTooLarge,
    QueueFull,
    ResultTimeout,
    ShuttingDown,
    SubmissionError,
    TaskCancelled,
    TaskError,
    TaskFailed,
    TaskModuleError,
    TaskNotFound,
    TaskNotRegistered,
    TaskTimeout,
    WorkerLost,
)
from ._event_stream import EventStream
from ._model import ErrorInfo, Priority, TaskResult, TaskStatus
from ._open_client import open_client
from ._records import ClusterStats, Event, EventKind, QueueStats, WorkerStats, WorkerStatus
from ._registry import Registry, TaskSpec, default_registry, task
from ._settings import ControlPlaneSettings
from ._subworker_node import SubworkerNode, open_subworker, run_subworker
from ._version import VERSION

__version__ = VERSION

__all__ = [
    "AuthenticationFailed",
    "BlockingClient",
    "Chain",
    "Chord",
    "Client",
    "ClientSettings",
    "ClientStatistics",
    "ClusterStats",
    "ConfigurationError",
    "ConnectionFailed",
    "ControlPlaneNode",
    "ControlPlaneSettings",
    "ErrorInfo",
    "Event",
    "EventKind",
    "EventStream",
    "FastWorkerError",
    "Group",
    "InvalidSchedule",
    "JournalWriteFailed",
    "NotSerializable",
    "PayloadTooLarge",
    "Priority",
    "QueueFull",
    "QueueStats",
    "Registry",
    "ResultTimeout",
    "ShuttingDown",
    "Signature",
    "SubmissionError",
    "SubworkerNode",
    "TaskCancelled",
    "TaskError",
    "TaskFailed",
    "TaskModuleError",
    "TaskNotFound",
    "TaskNotRegistered",
    "TaskResult",
    "TaskSpec",
    "TaskStatus",
    "TaskTimeout",
    "WorkerLost",
    "WorkerStats",
    "WorkerStatus",
    "chain",
    "chord",
    "connect",
    "default_registry",
    "group",
    "open_client",
    "open_control_plane",
    "open_subworker",
    "run_control_plane",
    "run_subworker",
    "sig",
    "task",
]
