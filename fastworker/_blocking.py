"""The blocking client for threads and sync code: ``fastworker.connect()``.

One BlockingClient serves every thread of a process (Django, Flask, scripts,
notebooks). Its trio client lives in the process's trio thread (``_portal``); each
method blocks the calling thread until the answer is there. A process forked after the
client was made (gunicorn ``--preload``) reconnects on its first call.
"""

from __future__ import annotations

import os
import ssl
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

import trio

import actors

from ._asyncio import Holder
from ._canvas import FLOWS, Chain, Chord, Group, Signature
from ._client import BatchItem, Client, ClientStatistics, PriorityLike, TaskRef, When
from ._errors import ConnectionFailed, ResultTimeout
from ._model import TaskResult, TaskStatus
from ._portal import Portal, get_portal
from ._records import ClusterStats
from ._serialization import DEFAULT_MAX_PAYLOAD

P = ParamSpec("P")
R = TypeVar("R")

_clients: weakref.WeakSet[BlockingClient] = weakref.WeakSet()


class BlockingClient:
    """A client whose methods block the calling thread (from ``fastworker.connect()``).

    Safe to share between threads. Use it with ``with`` or keep it for the life of the
    process; ``close()`` ends it. ``timeout=`` on the waiting calls raises
    ResultTimeout (also a TimeoutError); the task itself goes on.
    """

    def __init__(self, url: str | None, options: dict[str, Any]) -> None:
        self._url = url
        self._options = options
        self._lock = threading.Lock()
        self._pid = -1
        self._portal: Portal | None = None
        self._holder: Holder | None = None
        self._client: Client | None = None
        self._closed = False
        _clients.add(self)

    # -- connection ---------------------------------------------------------------------
    def _connected(self) -> tuple[Portal, Client]:
        portal, client = self._portal, self._client
        if portal is not None and client is not None and portal.alive:
            return portal, client  # alive: made in this process, its thread running
        with self._lock:
            if self._closed:
                raise ConnectionFailed("this client was closed: make a new one with connect()")
            if self._portal is not None and not self._portal.alive:
                # A forked child (the parent's trio thread does not exist here), or the
                # thread stopped: start afresh.
                self._portal = self._holder = self._client = None
            if self._client is None:
                portal = get_portal()
                holder = Holder(portal, self._url, self._options)
                self._client = portal.run(holder.open)
                self._portal, self._holder, self._pid = portal, holder, os.getpid()
            assert self._portal is not None and self._client is not None
            return self._portal, self._client

    def connect(self) -> None:
        """Connect now (the first call does otherwise).

        Raises:
            ConnectionFailed: the control plane is unreachable within
                ``connect_timeout``, or this client was closed.
            AuthenticationFailed: the control plane refused the secret.
            ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
        """
        self._connected()

    def close(self) -> None:
        """Close the connection; calls waiting in other threads raise ConnectionFailed."""
        with self._lock:
            self._closed = True
            holder, portal = self._holder, self._portal
            same_process = self._pid == os.getpid()
            self._portal = self._holder = self._client = None
        if holder is not None and portal is not None and same_process and portal.alive:
            portal.run(holder.close)

    def __enter__(self) -> BlockingClient:
        self._connected()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        """The control plane's URL (connects first if needed)."""
        return self._connected()[1].url

    @property
    def connected(self) -> bool:
        """True while linked and registered (without connecting)."""
        client, portal = self._client, self._portal
        return client is not None and portal is not None and portal.alive and client.connected

    def statistics(self) -> ClientStatistics:
        """The client's own bookkeeping (see Client.statistics).

        Raises:
            ConnectionFailed: the control plane is unreachable (within
                ``connect_timeout`` at first use, ``reconnect_timeout`` later), or this
                client was closed.
        """
        return self._connected()[1].statistics()

    def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        portal, client = self._connected()
        fn = getattr(client, method)

        async def run() -> Any:
            return await fn(*args, **kwargs)

        return portal.run(run)

    # -- submitting ---------------------------------------------------------------------
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
                with trio.move_on_after(_seconds(timeout)):
                    return await client.call(task, *args, **kwargs)
                raise ResultTimeout(f"the workflow is not finished after {timeout}s; it goes on")

            return portal.run(run_flow)
        sub = client._submission(task, args, kwargs, priority, countdown, eta, None, unique_key)
        return portal.run(client._call, sub, timeout)

    # -- results ------------------------------------------------------------------------
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
            with trio.move_on_after(_seconds(timeout)):
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
            with trio.move_on_after(_seconds(timeout)):
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


def _seconds(timeout: float | None) -> float:
    return float("inf") if timeout is None else float(timeout)


def connect(
    url: str | None = None,
    *,
    cluster: str = "default",
    secret: str | bytes | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    reconnect_timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
    lazy: bool = False,
) -> BlockingClient:
    """A blocking client for threads and sync code, shared by every thread.

    Connects at once (``lazy=True``: on first use, e.g. at import time of a web app);
    ``url`` None discovers the control plane. Use it with ``with``, or keep it for the
    life of the process; a forked child reconnects on first use.

    Args:
        url: ``ws://HOST:PORT`` (``wss://`` with TLS); None discovers it.
        cluster: the cluster's name.
        secret: the cluster secret, if the cluster has one.
        ssl_context: the TLS context for a ``wss://`` URL.
        connect_timeout: seconds to find and reach the control plane.
        reconnect_timeout: seconds a call waits for a lost link to come back.
        max_payload: the largest packed arguments (and results) in bytes.
        discovery_port: the UDP port discovery uses.
        lazy: connect on first use instead of now.

    Returns:
        The BlockingClient.

    Raises:
        ConnectionFailed: the control plane is unreachable within ``connect_timeout``
            (not raised with ``lazy``: the first call raises it then).
        AuthenticationFailed: the control plane refused the secret.
        ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
    """
    client = BlockingClient(
        url,
        {
            "cluster": cluster,
            "secret": secret,
            "ssl_context": ssl_context,
            "connect_timeout": connect_timeout,
            "reconnect_timeout": reconnect_timeout,
            "max_payload": max_payload,
            "discovery_port": discovery_port,
        },
    )
    if not lazy:
        client.connect()
    return client


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
