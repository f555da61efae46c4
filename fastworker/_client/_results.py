"""Results and waiters: result, gather, get_result, and status, cancel, stats."""

from __future__ import annotations

from collections.abc import Sequence

import trio

import actors

from .._errors import TaskNotFound
from .._messages import Cancel, GetResult, GetStats, GetStatus, Outcome, Watch
from .._model import TaskResult, TaskStatus
from .._records import ClusterStats, stats_from_wire
from ._connection import WATCH_CHUNK, ClientBase
from ._outcomes import to_result


class ResultsMixin(ClientBase):
    """Waiting for outcomes, and the one-shot queries."""

    def _waiter(self, task_id: str) -> actors.Future:
        future = actors.Future()
        self._waiters.setdefault(task_id, []).append(future)
        return future

    def _drop_waiter(self, task_id: str, future: actors.Future) -> None:
        waiters = self._waiters.get(task_id)
        if waiters is not None and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[task_id]

    def _deliver(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            for future in self._waiters.pop(outcome.id, ()):
                future.resolve(outcome)

    def _unknown(self, ids: list[str]) -> None:
        for task_id in ids:
            for future in self._waiters.pop(task_id, ()):
                future.fail(
                    TaskNotFound(
                        f"no task with id {task_id!r}: it was never submitted, or its result "
                        "left the result cache (evicted past result_cache_size, or expired "
                        "after result_ttl)"
                    )
                )

    async def result(self, task_id: str) -> TaskResult:
        """Wait until the task is terminal and return its TaskResult (any status).

        The caller owns the timeout (``with trio.fail_after(...)``).

        Args:
            task_id: the id ``delay``/``submit`` returned.

        Returns:
            The task's TaskResult (success, failure or cancelled).

        Raises:
            TaskNotFound: the cluster does not know the id (never submitted, or its
                result left the result cache).
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``, or the client closed while waiting.
        """
        future = self._waiter(task_id)
        try:
            await self._tell(Watch([task_id]))
            return to_result(await future.wait())
        finally:
            self._drop_waiter(task_id, future)

    async def gather(self, task_ids: Sequence[str]) -> list[TaskResult]:
        """Wait until every task is terminal; their TaskResults in the same order.

        One request for all of them, however many: the way to wait for a batch.

        Args:
            task_ids: the ids to wait for (repeats allowed).

        Returns:
            The TaskResults, in the order of ``task_ids``.

        Raises:
            TaskNotFound: any id is unknown to the cluster.
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``, or the client closed while waiting.
        """
        futures = [self._waiter(task_id) for task_id in task_ids]
        try:
            if task_ids:
                await self._watch(list(dict.fromkeys(task_ids)))
            for future in futures:
                if not future.done:
                    await future.wait()
            await trio.lowlevel.checkpoint()
            return [to_result(future.result()) for future in futures]
        finally:
            for task_id, future in zip(task_ids, futures, strict=True):
                self._drop_waiter(task_id, future)

    async def _watch(self, ids: list[str]) -> None:
        """Watch many ids: in several messages, each small enough for the link's frames.

        Raises:
            MessageTooLarge: a single id is over the link's frame limit.
        """
        parts = [ids[start : start + WATCH_CHUNK] for start in range(0, len(ids), WATCH_CHUNK)]
        while parts:
            part = parts.pop()
            try:
                await self._tell(Watch(part))
            except actors.MessageTooLarge:
                if len(part) < 2:
                    raise
                half = len(part) // 2
                parts += [part[half:], part[:half]]

    async def get_result(self, task_id: str) -> TaskResult | None:
        """The TaskResult if the task is terminal; None if unknown, unfinished or expired.

        Does not wait for the task.

        Args:
            task_id: the id ``delay``/``submit`` returned.

        Returns:
            The TaskResult, or None.

        Raises:
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused the request.
        """
        outcome = await self._ask(GetResult(task_id))
        return to_result(outcome) if outcome is not None else None

    async def status(self, task_id: str) -> TaskStatus | None:
        """The task's current status, or None if unknown or expired.

        Args:
            task_id: the id ``delay``/``submit`` returned.

        Returns:
            The TaskStatus, or None.

        Raises:
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused the request.
        """
        value = await self._ask(GetStatus(task_id))
        return TaskStatus(value) if value is not None else None

    async def cancel(self, task_id: str) -> bool:
        """Cancel a queued, scheduled or running task; False if unknown or already finished.

        A queued or scheduled task never runs; a running async task is interrupted (its
        ``finally`` runs); a running sync task cannot be interrupted, so it is marked
        cancelled and its late result discarded.

        Args:
            task_id: the id ``delay``/``submit`` returned.

        Returns:
            True if the task is now cancelled.

        Raises:
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused the request.
        """
        return bool(await self._ask(Cancel(task_id)))

    async def stats(self) -> ClusterStats:
        """A snapshot of the cluster: queue depths, workers, counters.

        Returns:
            The control plane's ClusterStats.

        Raises:
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused the request.
        """
        return stats_from_wire(await self._ask(GetStats()))
