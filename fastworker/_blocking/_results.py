"""The blocking client's questions: wait for results (result, gather, under
``timeout``) and ask once (get_result, status, cancel, stats)."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from .._errors import ResultTimeout
from .._model import TaskResult, TaskStatus
from .._records import ClusterStats
from ._connection import BlockingBase, seconds


class ResultsMixin(BlockingBase):
    """result, gather, get_result, status, cancel and stats, blocking."""

    def result(self, task_id: str, *, timeout: float | None = None) -> TaskResult:
        """Wait until the task is terminal and return its TaskResult (any status).

        Raises:
            ResultTimeout: not terminal within ``timeout`` seconds.
            TaskNotFound: the cluster does not know the id.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        portal, client = self._connected()

        async def wait() -> TaskResult:
            with trio.move_on_after(seconds(timeout)):
                return await client.result(task_id)
            raise ResultTimeout(
                f"task {task_id} is not finished after {timeout}s; it goes on", task_id
            )

        return portal.run(wait)

    def gather(self, task_ids: Sequence[str], *, timeout: float | None = None) -> list[TaskResult]:
        """Wait until every task is terminal; their TaskResults in the same order.

        Raises:
            ResultTimeout: not all terminal within ``timeout`` seconds.
            TaskNotFound: an id is unknown.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        portal, client = self._connected()
        ids = list(task_ids)

        async def wait() -> list[TaskResult]:
            with trio.move_on_after(seconds(timeout)):
                return await client.gather(ids)
            raise ResultTimeout(f"{len(ids)} tasks not all finished after {timeout}s")

        return portal.run(wait)

    def get_result(self, task_id: str) -> TaskResult | None:
        """The TaskResult if the task is terminal; None if unknown, unfinished or expired.

        Raises:
            FastWorkerError: the control plane refused the request.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        result: TaskResult | None = self._run("get_result", task_id)
        return result

    def status(self, task_id: str) -> TaskStatus | None:
        """The task's current status, or None if unknown or expired.

        Raises:
            FastWorkerError: the control plane refused the request.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        result: TaskStatus | None = self._run("status", task_id)
        return result

    def cancel(self, task_id: str) -> bool:
        """Cancel a queued, scheduled or running task; False if unknown or finished.

        Raises:
            FastWorkerError: the control plane refused the request.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        return bool(self._run("cancel", task_id))

    def stats(self) -> ClusterStats:
        """A snapshot of the cluster: queue depths, workers, counters.

        Raises:
            FastWorkerError: the control plane refused the request.
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        result: ClusterStats = self._run("stats")
        return result
