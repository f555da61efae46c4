"""The control plane: a thin actor over parts that each tell one piece of a task's story.

Read in this order: ``_records`` (a task's record, the settings), ``_task_table``
(the tasks and what admission keeps), ``_pool`` (the workers and their credits),
``_state`` (what the actor keeps), ``_admission``, ``_dispatch``, ``_outcomes``,
``_cancellation``, ``_workers``, ``_flows`` (workflows), then ``_actor`` (the loop and
its handler table). The three tables (``_task_table``, ``_pool``, ``_tables``) are pure
and trio-free, tested directly. Its in-process messages are in
``fastworker._protocol`` and re-exported here, so older imports keep working.
"""

from .._protocol import (
    Abandon,
    Accept,
    BeginDrain,
    CancelDeadline,
    CancelTask,
    EventSubscription,
    GetClusterStats,
    RateWake,
    Restore,
    StatusOf,
    TaskDetail,
    WaitIdle,
    WatchIds,
    WorkerCompleted,
    WorkerJoined,
    WorkerLeft,
    WorkerRetiring,
)
from ._actor import ControlPlane
from ._pool import PoolStatistics, WorkerPool, WorkerSlot
from ._records import (
    LOCAL_WORKER,
    PREFETCH_BELOW,
    RECENT_DONE,
    ControlPlaneConfig,
    Observer,
    TaskRecord,
)
from ._task_table import TaskTable

__all__ = [
    "LOCAL_WORKER",
    "PREFETCH_BELOW",
    "RECENT_DONE",
    "Abandon",
    "Accept",
    "BeginDrain",
    "CancelDeadline",
    "CancelTask",
    "ControlPlane",
    "ControlPlaneConfig",
    "EventSubscription",
    "GetClusterStats",
    "Observer",
    "PoolStatistics",
    "RateWake",
    "Restore",
    "StatusOf",
    "TaskDetail",
    "TaskRecord",
    "TaskTable",
    "WaitIdle",
    "WatchIds",
    "WorkerCompleted",
    "WorkerJoined",
    "WorkerLeft",
    "WorkerPool",
    "WorkerRetiring",
    "WorkerSlot",
]
