"""The trio-native client: submit tasks, await results, query, cancel, follow events."""

from __future__ import annotations

import logging
import math
import secrets
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from itertools import count
from types import TracebackType
from typing import Any, ParamSpec, TypeAlias, TypeVar, overload

import attrs
import sniffio
import trio

import actors
from actors import Actor, Context

from ._canvas import FLOWS, Chain, Chord, Group, Signature, flatten
from ._discovery import discover_control_plane
from ._errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    FastWorkerError,
    JournalWriteFailed,
    NotSerializable,
    PayloadTooLarge,
    QueueFull,
    ResultTimeout,
    ShuttingDown,
    TaskCancelled,
    TaskFailed,
    TaskNotFound,
    TaskNotRegistered,
    TaskTimeout,
    WorkerLost,
)
from ._event_stream import EventStream, TrioEventStream
from ._messages import (
    Cancel,
    ClusterStats,
    Event,
    Events,
    GetResult,
    GetStats,
    GetStatus,
    Outcome,
    RegisterClient,
    Results,
    Submission,
    Submit,
    SubmitFlow,
    SubscribeEvents,
    Unknown,
    Watch,
)
from ._model import ErrorInfo, Priority, TaskResult, TaskStatus
from ._names import REGISTRATION as GATEWAY
from ._node import node_config, secret_bytes
from ._serialization import DEFAULT_MAX_PAYLOAD, pack_arguments, unpack
from ._tls import check_tls

log = logging.getLogger("fastworker.client")

P = ParamSpec("P")
R = TypeVar("R")

TaskRef: TypeAlias = "str | Callable[..., Any]"
"""A task: its registered name, or the ``@task`` function itself."""
PriorityLike: TypeAlias = "Priority | str | int"
When: TypeAlias = "datetime | float"
BatchItem: TypeAlias = (
    "tuple[TaskRef, Sequence[Any]] | tuple[TaskRef, Sequence[Any], dict[str, Any]]"
)

# A frame the control plane could not take (over its own limit) closes the link with 1009.
_CLOSE_TOO_BIG = 1009
_SERVER_FRAME_DEFAULT = 16 * 1024 * 1024


def task_name(task: TaskRef) -> str:
    """The registered name of a task given by name or as its ``@task`` function.

    Raises:
        ConfigurationError: ``task`` is an empty string, or neither a name nor a
            ``@task`` function (a plain function that is not a task).
    """
    if isinstance(task, str):
        if not task:
            raise ConfigurationError("a task name must be a non-empty string")
        return task
    spec = getattr(task, "fastworker_task", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str):
        return name
    raise ConfigurationError(
        f"{task!r} is not a task: pass a function decorated with @task, or a task's name"
    )

ROLE = "client"
INBOX = "inbox"
WATCH_CHUNK = 50_000
"""Task ids per Watch message at most (a million ids would not fit one frame)."""

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


@attrs.frozen
class ClientStatistics:
    """A client's own bookkeeping (from ``Client.statistics()``): all 0 when idle."""

    waited_ids: int
    waiters: int
    submitting: int
    event_streams: int
    connected: bool


class _Inbox(Actor):
    """The client's local actor: outcomes and events pushed by the control plane."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def receive(self, ctx: Context, message: Any) -> Any:
        kind = type(message)
        if kind is Results:
            self.client._deliver(message.outcomes)
        elif kind is Unknown:
            self.client._unknown(message.ids)
        elif kind is Events:
            self.client._publish(message.events)
        return None


class Client:
    """A connection to a FastWorker cluster (from ``open_client``).

    Every call is safe to make from many tasks at once. When the link drops, waiting
    calls resume after the reconnect, and new calls wait up to ``reconnect_timeout``
    before raising ConnectionFailed.
    """

    def __init__(
        self,
        system: actors.ActorSystem,
        peer: actors.Peer,
        *,
        max_payload: int,
        reconnect_timeout: float,
    ) -> None:
        self.system = system
        self.peer = peer
        self.max_payload = max_payload
        self.reconnect_timeout = reconnect_timeout
        self._prefix = secrets.token_hex(6)
        self._ids = count(1)
        self._connection: actors.ActorRef | None = None
        self._ready = trio.Event()
        self._inbox_ref: actors.LocalRef | None = None
        self._waiters: dict[str, list[actors.Future]] = {}
        self._submitting: set[str] = set()
        self._event_channels: list[trio.MemorySendChannel[Event]] = []
        self._events_dropped = 0

    @property
    def url(self) -> str:
        """The control plane's URL."""
        return self.peer.url or ""

    @property
    def connected(self) -> bool:
        """True while linked and registered."""
        return self._ready.is_set() and self.peer.connected

    def new_id(self) -> str:
        """A fresh, unique task id (cheap: a random client prefix and a counter)."""
        return f"{self._prefix}-{next(self._ids):x}"

    # -- submitting -------------------------------------------------------------------
    def _submission(
        self,
        task: TaskRef,
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        priority: Priority | str | int | None,
        countdown: float | None,
        eta: datetime | float | None,
        task_id: str | None,
        unique_key: str | None = None,
    ) -> Submission:
        name = task_name(task)
        payload = pack_arguments(tuple(args), kwargs or {}, limit=self.max_payload)
        when: float | None = None
        delay: float | None = None
        if countdown is not None and eta is not None:
            raise ConfigurationError("give countdown or eta, not both")
        if countdown is not None:
            if (
                not isinstance(countdown, int | float)
                or isinstance(countdown, bool)
                or not math.isfinite(countdown)
            ):
                raise ConfigurationError(
                    f"countdown must be a number of seconds, got {countdown!r}"
                )
            delay = max(0.0, float(countdown))
        elif eta is not None:
            if isinstance(eta, datetime):
                if eta.tzinfo is None:
                    raise ConfigurationError("eta must be a timezone-aware datetime")
                when = eta.timestamp()
            elif isinstance(eta, int | float) and math.isfinite(eta):
                when = float(eta)
            else:
                raise ConfigurationError(f"eta must be a datetime or a timestamp, got {eta!r}")
        prio = None
        if priority is not None:
            try:
                prio = int(Priority.parse(priority))
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
            raise ConfigurationError(f"unique_key must be a non-empty string, got {unique_key!r}")
        return Submission(task_id or self.new_id(), name, payload, prio, when, delay, unique_key)

    async def submit(
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
        """Submit one task (a name or the ``@task`` function) with explicit args and kwargs.

        Returns its id once accepted. The way to pass keyword arguments named like
        ``delay``'s own (priority, countdown, eta, unique_key). With ``unique_key``,
        while a task submitted with that key is not terminal, or its result is still
        cached, the existing task's id is returned and nothing runs.

        Args:
            task: the ``@task`` function or the task's registered name.
            args: the task's positional arguments.
            kwargs: the task's keyword arguments.
            priority: overrides the task's default priority.
            countdown: run no sooner than this many seconds from now.
            eta: run no sooner than this time (aware datetime or POSIX timestamp).
            task_id: the id to use (default: a fresh one); resubmitting an id is
                idempotent.
            unique_key: at most one live task per key.

        Returns:
            The task's id (with ``unique_key``, possibly an earlier task's).

        Raises:
            ConfigurationError: a bad option or task reference (not a name or a ``@task``
                function; countdown and eta both; a bad priority or unique_key).
            NotSerializable: the arguments are not msgpack data.
            PayloadTooLarge: the arguments are over ``max_payload`` (or the control
                plane's frame limit).
            TaskNotRegistered: neither the control plane nor any worker has the task.
            QueueFull: the control plane's queue is at ``max_queue``.
            ShuttingDown: the control plane is draining.
            JournalWriteFailed: the control plane could not journal the submission.
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused it for another reason (the
                message says which).
        """
        sub = self._submission(task, args, kwargs, priority, countdown, eta, task_id, unique_key)
        return (await self._submit([sub], watch=False))[0]

    @overload
    async def delay(
        self, task: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> str: ...
    @overload
    async def delay(
        self, task: TaskRef, /, *args: Any, priority: PriorityLike | None, **kwargs: Any
    ) -> str: ...
    @overload
    async def delay(
        self, task: TaskRef, /, *args: Any, countdown: float | None, **kwargs: Any
    ) -> str: ...
    @overload
    async def delay(self, task: TaskRef, /, *args: Any, eta: When | None, **kwargs: Any) -> str: ...
    @overload
    async def delay(
        self, task: TaskRef, /, *args: Any, unique_key: str | None, **kwargs: Any
    ) -> str: ...
    @overload
    async def delay(
        self, task: str | Signature | Chain | Group | Chord, /, *args: Any, **kwargs: Any
    ) -> str: ...
    async def delay(
        self,
        task: TaskRef | Signature | Chain | Group | Chord,
        /,
        *args: Any,
        priority: Any = None,
        countdown: Any = None,
        eta: Any = None,
        unique_key: Any = None,
        **kwargs: Any,
    ) -> str:
        """Submit ``task(*args, **kwargs)``; returns the task id once the control plane accepted it.

        ``task`` is the ``@task`` function (type-checked: mypy checks the arguments) or
        its name. ``priority`` overrides the task's default; ``countdown`` (seconds) or
        ``eta`` (aware datetime or timestamp) schedule it. A task whose own keyword
        arguments are called priority, countdown, eta or unique_key is submitted with
        ``submit()``. With ``unique_key``, while a task submitted with that key is not
        terminal, or its result is still cached, its id is returned and nothing runs.
        A workflow (``chain``, ``group``, ``chord``; ``fastworker.sig``) is submitted
        whole and gets one id; ``priority`` is then the default of its members.

        Raises:
            ConfigurationError: a bad option or task reference (not a name or a ``@task``
                function; countdown and eta both; ``unique_key`` with a workflow; a bad
                priority or unique_key).
            NotSerializable: the arguments are not msgpack data.
            PayloadTooLarge: the arguments are over ``max_payload`` (or the control
                plane's frame limit).
            TaskNotRegistered: neither the control plane nor any worker has the task.
            QueueFull: the control plane's queue is at ``max_queue``.
            ShuttingDown: the control plane is draining.
            JournalWriteFailed: the control plane could not journal the submission.
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused it for another reason (the
                message says which).
        """
        if isinstance(task, FLOWS):  # a workflow: one id for all of it
            if unique_key is not None:
                raise ConfigurationError(
                    "unique_key applies to single tasks, not to workflows: give it to "
                    "delay() of a task"
                )
            return await self._delay_flow(task, args, kwargs, priority, countdown, eta, False)
        sub = self._submission(task, args, kwargs, priority, countdown, eta, None, unique_key)
        return (await self._submit([sub], watch=False))[0]

    async def delay_batch(
        self,
        items: Iterable[BatchItem],
        *,
        priority: PriorityLike | None = None,
    ) -> list[str]:
        """Submit many tasks as one all-or-nothing batch; returns their ids in order.

        Each item is ``(task, args)`` or ``(task, args, kwargs)``, the task a name or a
        ``@task`` function. Everything is validated and packed before anything is sent;
        the control plane accepts the whole batch or none of it.

        Args:
            items: ``(task, args)`` or ``(task, args, kwargs)`` tuples.
            priority: overrides every task's default priority.

        Returns:
            The tasks' ids, in the order of ``items``.

        Raises:
            ConfigurationError: an item is not such a tuple, or names no task (the
                message gives the item's index).
            NotSerializable: an item's arguments are not msgpack data.
            PayloadTooLarge: an item, or the whole batch, is over the size limit:
                submit it in smaller batches.
            TaskNotRegistered: any name is unknown (nothing is queued).
            QueueFull: the batch does not fit in the queue (nothing is queued).
            ShuttingDown: the control plane is draining.
            JournalWriteFailed: the control plane could not journal the batch.
            ConnectionFailed: the control plane stayed unreachable for
                ``reconnect_timeout``.
            FastWorkerError: the control plane refused it for another reason.
        """
        subs = []
        for index, item in enumerate(items):
            if not isinstance(item, tuple | list) or len(item) not in (2, 3):
                raise ConfigurationError(
                    f"batch item {index} must be (task, args) or (task, args, kwargs), got {item!r}"
                )
            name, args = item[0], item[1]
            kwargs = item[2] if len(item) == 3 else None
            try:
                subs.append(self._submission(name, args, kwargs, priority, None, None, None))
            except FastWorkerError as exc:
                raise type(exc)(f"batch item {index} ({name!r}): {exc}") from None
        if subs:
            return await self._submit(subs, watch=False)
        return []

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

    async def _submit(self, subs: list[Submission], *, watch: bool) -> list[str]:
        """Send and wait for the acknowledgement; the ids the tasks have (unique keys
        may map a submission to the id of an earlier task).

        Raises:
            PayloadTooLarge: the batch is over one message, or the control plane
                dropped the link on its frame.
        """
        message = Submit(subs, watch)
        ids = [s.id for s in subs] if watch else []
        # A watched submission subscribes its own ids; the re-watch after a reconnect
        # must leave them out, or it could be answered "unknown" before the resubmission.
        self._submitting.update(ids)
        size = sum(len(s.payload) for s in subs)
        drops = 0
        try:
            while True:
                connection = await self._connection_ref()
                link = self.peer.link
                try:
                    answer = await connection.ask(message)
                    if isinstance(answer, list):
                        return [str(task_id) for task_id in answer]
                    return [s.id for s in subs]
                except actors.PeerDown:
                    # Whether it was accepted is unknown: resubmit after the reconnect (the
                    # ids make a resubmission idempotent), unless the control plane closed
                    # the link because this very frame was over its limit: resending it
                    # would only drop the link again.
                    drops += 1
                    self._check_frame_refused(link, size, drops)
                    continue
                except actors.MessageTooLarge as exc:
                    if len(subs) > 1:
                        raise PayloadTooLarge(
                            f"a batch of {len(subs)} tasks is too large for one message "
                            f"({exc}): submit it in smaller batches"
                        ) from None
                    raise self._translate(exc) from None
                except actors.ActorError as exc:
                    raise self._translate(exc) from None
        finally:
            self._submitting.difference_update(ids)

    def _check_frame_refused(self, link: Any, size: int, drops: int) -> None:
        closed = getattr(link, "closed", None)
        code = getattr(closed, "code", None)
        if code == _CLOSE_TOO_BIG or (drops >= 2 and size > _SERVER_FRAME_DEFAULT - 1024):
            raise PayloadTooLarge(
                f"the control plane at {self.url} closed the connection on a {size:,}-byte "
                "submission: it is over the control plane's frame limit (its --max-payload); "
                "pass a reference (a path, a key), not the data"
            )

    async def _call_flow(
        self, flow: Signature | Chain | Group | Chord, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        flow_id = self.new_id()
        future = self._waiter(flow_id)
        try:
            await self._delay_flow(flow, args, kwargs, None, None, None, True, flow_id)
        except BaseException:
            self._waiters.pop(flow_id, None)
            raise
        result = to_result(await future.wait())
        raise_for(result)
        return result.value

    async def _delay_flow(
        self,
        flow: Signature | Chain | Group | Chord,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        priority: Priority | str | int | None,
        countdown: float | None,
        eta: datetime | float | None,
        watch: bool,
        flow_id: str | None = None,
    ) -> str:
        """Submit a workflow as one SubmitFlow message; returns its id once accepted.

        Raises:
            ConfigurationError: arguments or options a workflow does not take.
            PayloadTooLarge: the workflow packs to more than ``max_payload``.
            TaskNotRegistered: a member's task is unknown.
            FastWorkerError: the control plane refused the workflow.
        """
        if args or kwargs:
            raise ConfigurationError(
                "a workflow takes its arguments in its signatures: sig(task, *args, **kwargs)"
            )
        if isinstance(flow, Signature):
            sub = self._submission(
                flow.name,
                flow.args,
                flow.kwargs,
                flow.priority if priority is None else priority,
                flow.countdown if countdown is None and eta is None else countdown,
                eta,
                flow_id,
            )
            await self._submit([sub], watch=watch)
            return sub.id
        if not isinstance(flow, Chain | Group | Chord):
            raise ConfigurationError(
                f"delay() takes a task name, a @task function or a workflow, got {flow!r}"
            )
        if countdown is not None or eta is not None:
            raise ConfigurationError(
                "a workflow has no countdown or eta of its own: set it on a member, "
                "sig(task, ...).set(countdown=...)"
            )
        prio = None
        if priority is not None:
            try:
                prio = int(Priority.parse(priority))
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
        packed = flatten(flow, limit=self.max_payload, priority=prio)
        if len(packed) > self.max_payload:
            raise PayloadTooLarge(
                f"the workflow packs to {len(packed)} bytes, over the {self.max_payload}-byte "
                "message limit: pass references (paths, keys) instead of data, split it into "
                "several workflows, or raise max_payload on the client and the control plane"
            )
        message = SubmitFlow(flow_id or self.new_id(), packed, watch)
        ids = [message.id] if watch else []
        self._submitting.update(ids)
        try:
            while True:
                connection = await self._connection_ref()
                try:
                    await connection.ask(message)
                    return message.id
                except actors.PeerDown:
                    continue  # resubmitted after the reconnect: the id makes it idempotent
                except actors.ActorError as exc:
                    if isinstance(exc, actors.RemoteError):
                        if exc.type_name == "TaskNotRegistered":
                            raise TaskNotRegistered(exc.message) from None
                        if exc.type_name == "FastWorkerError":
                            raise FastWorkerError(exc.message) from None
                    raise self._translate(exc) from None
        finally:
            self._submitting.difference_update(ids)

    @staticmethod
    def _translate(exc: actors.ActorError) -> FastWorkerError:
        if isinstance(exc, actors.RemoteError):
            cls = _SUBMISSION_ERRORS.get(exc.type_name)
            if cls is not None:
                return cls(exc.message)
            return FastWorkerError(f"the control plane refused the request: {exc}")
        if isinstance(exc, actors.MessageTooLarge):
            return PayloadTooLarge(str(exc))
        return FastWorkerError(f"the control plane refused the request: {exc}")

    # -- results ----------------------------------------------------------------------
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
        stats: ClusterStats = await self._ask(GetStats())
        return stats

    async def _ask(self, message: Any) -> Any:
        while True:
            connection = await self._connection_ref()
            try:
                return await connection.ask(message)
            except actors.PeerDown:
                continue
            except actors.ActorError as exc:
                raise self._translate(exc) from None

    # -- events -----------------------------------------------------------------------
    async def _subscribe(self, send: trio.MemorySendChannel[Event]) -> None:
        """Add an events() stream; the first one subscribes this client."""
        first = not self._event_channels
        self._event_channels.append(send)
        if first:
            try:
                await self._tell(SubscribeEvents(True))
            except BaseException:
                self._unsubscribe(send)
                raise

    def _unsubscribe(self, send: trio.MemorySendChannel[Event]) -> None:
        """Remove an events() stream; after the last one, the control plane stops pushing."""
        if send not in self._event_channels:
            return
        self._event_channels.remove(send)
        if not self._event_channels and self.peer.connected and self._connection:
            try:
                self._connection.tell_nowait(SubscribeEvents(False))
            except actors.ActorError:
                pass

    def events(self, *, buffer: int = 1000) -> EventStream:
        """Task and worker events as they happen (``Event.kind`` is "task" or "worker").

        A closable stream: ``async with client.events() as stream: async for event in
        stream: ...`` (``async for event in client.events()`` works too). It ends when
        closed or when the client closes. A consumer that falls more than ``buffer``
        events behind loses the events that arrive while its buffer is full (counted in
        ``events_dropped``), so a slow reader never slows the cluster.

        Args:
            buffer: events held for this consumer before new ones are dropped.

        Returns:
            A new EventStream; it subscribes on ``async with`` or first iteration,
            where it raises ConnectionFailed if the control plane stays unreachable.
        """
        return TrioEventStream(buffer, self._subscribe, self._unsubscribe)

    @property
    def events_dropped(self) -> int:
        """Events dropped because an ``events()`` consumer fell behind."""
        return self._events_dropped

    def statistics(self) -> ClientStatistics:
        """What this client holds: ids waited for, waits, submissions in flight."""
        return ClientStatistics(
            waited_ids=len(self._waiters),
            waiters=sum(len(w) for w in self._waiters.values()),
            submitting=len(self._submitting),
            event_streams=len(self._event_channels),
            connected=self.connected,
        )

    def _publish(self, events: list[Event]) -> None:
        for channel in self._event_channels:
            for event in events:
                try:
                    channel.send_nowait(event)
                except trio.WouldBlock:
                    self._events_dropped += 1

    async def _tell(self, message: Any) -> None:
        connection = await self._connection_ref()
        try:
            await connection.tell(message)
        except actors.PeerDown:
            pass  # watches and subscriptions are renewed after the reconnect

    # -- connection -------------------------------------------------------------------
    def _close(self) -> None:
        """The client is closing: waiting calls raise ConnectionFailed, event streams end."""
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for future in futures:
                future.fail(ConnectionFailed("the client was closed while waiting for a result"))
        for channel in self._event_channels:
            channel.close()

    def _usable(self) -> bool:
        # A link that closed is still the peer's link until the peer notices; it is not
        # usable then (asks on it fail at once, without a checkpoint).
        link = self.peer.link
        return (
            self._ready.is_set()
            and self._connection is not None
            and link is not None
            and link.closed is None
        )

    async def _connection_ref(self) -> actors.ActorRef:
        if self._usable():
            assert self._connection is not None
            return self._connection
        with trio.move_on_after(self.reconnect_timeout):
            while not self._usable():
                if self._ready.is_set():
                    # Registered over a link that just went down: _keep_registered
                    # notices within a scheduling round and starts re-registering.
                    await trio.lowlevel.checkpoint()
                else:
                    await self._ready.wait()
            assert self._connection is not None
            return self._connection
        raise ConnectionFailed(
            f"the control plane at {self.url} has been unreachable for "
            f"{self.reconnect_timeout}s: is it running? (fastworker run-actor-system ...)"
        )

    async def _keep_registered(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        first = True
        gateway = self.peer.ref(GATEWAY)
        while True:
            await self.peer.wait_connected()
            try:
                name = await gateway.ask(
                    RegisterClient(self.system.node_id, INBOX), sender=self._inbox_ref
                )
            except actors.PeerDown:
                continue
            self._connection = self.peer.ref(name)
            if not first:
                # Waiting calls resume: re-watch what they wait for, re-subscribe events.
                rewatch = [i for i in self._waiters if i not in self._submitting]
                try:
                    for start in range(0, len(rewatch), WATCH_CHUNK):
                        await self._connection.tell(Watch(rewatch[start : start + WATCH_CHUNK]))
                except actors.PeerDown:
                    pass  # down again already: the next registration re-watches
                if self._event_channels:
                    self._connection.tell_nowait(SubscribeEvents(True))
            self._ready.set()
            if first:
                first = False
                task_status.started()
            await self.peer.wait_disconnected()
            self._ready = trio.Event()
            log.warning("lost the control plane at %s; reconnecting", self.url)


@asynccontextmanager
async def open_trio_client(
    url: str | None = None,
    *,
    cluster: str = "default",
    secret: str | bytes | None = None,
    connect_timeout: float = 10.0,
    reconnect_timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    ssl_context: ssl.SSLContext | None = None,
    link: actors.LinkConfig | None = None,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
) -> AsyncIterator[Client]:
    """open_client's trio side (see there); the asyncio and blocking clients run it in
    the process's trio thread.

    Raises:
        ConfigurationError: a bad URL or secret, or a TLS context for a ws:// URL.
        ConnectionFailed: no control plane found or reached within ``connect_timeout``
            (or two answer for the cluster), or the hello was refused.
        AuthenticationFailed: the control plane refused the secret.
    """
    secret_key = secret_bytes(secret)
    config = node_config(
        cluster=cluster, role=ROLE, secret=secret_key, link=link, max_payload=max_payload
    )
    started = trio.current_time()
    if url is None:
        url = await discover_control_plane(
            cluster, secret_key, discovery_port, timeout=connect_timeout
        )
    check_tls(url, ssl_context)
    remaining = max(0.0, connect_timeout - (trio.current_time() - started))
    async with actors.open_actor_system(config) as system:
        with trio.move_on_after(remaining) as scope:
            try:
                peer = await system.connect(url, ssl_context=ssl_context)
            except actors.AuthenticationError as exc:
                raise AuthenticationFailed(
                    f"the control plane at {url} refused us: {exc}"
                ) from None
            except actors.HandshakeError as exc:
                raise ConnectionFailed(f"cannot connect to {url}: {exc}") from None
            client = Client(
                system, peer, max_payload=max_payload, reconnect_timeout=reconnect_timeout
            )
            client._inbox_ref = await system.spawn(INBOX, lambda: _Inbox(client), capacity=100_000)
            await system.nursery.start(client._keep_registered)
        if scope.cancelled_caught:
            raise ConnectionFailed(
                f"cannot reach the control plane at {url} within {connect_timeout}s: "
                "is it running? (fastworker run-actor-system --tasks ...)"
            )
        try:
            yield client
        finally:
            client._close()


def open_client(
    url: str | None = None,
    *,
    cluster: str = "default",
    secret: str | bytes | None = None,
    connect_timeout: float = 10.0,
    reconnect_timeout: float = 10.0,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    ssl_context: ssl.SSLContext | None = None,
    link: actors.LinkConfig | None = None,
    discovery_port: int = actors.DEFAULT_DISCOVERY_PORT,
) -> AbstractAsyncContextManager[Client]:
    """Connect to a cluster for the duration of the ``async with`` block.

    Works under trio and under asyncio (FastAPI, aiohttp, ``asyncio.run``): the same
    Client methods, awaited in whichever loop is running. Under asyncio the client lives
    in one trio thread shared by the process; cancelling an awaited call cancels it there.

    ``url`` None discovers the control plane on this host's network (it asks, and
    listens for beacons).

    Args:
        url: ``ws://HOST:PORT`` (``wss://`` with TLS); None discovers it.
        cluster: the cluster's name (discovery and the hello check it).
        secret: the cluster secret, if the cluster has one.
        connect_timeout: seconds to find and reach the control plane.
        reconnect_timeout: seconds a call waits for a lost link to come back.
        max_payload: the largest packed arguments (and results) in bytes.
        ssl_context: the TLS context for a ``wss://`` URL.
        link: link settings (frame size, heartbeats); default from ``max_payload``.
        discovery_port: the UDP port discovery uses.

    Returns:
        An async context manager whose ``async with`` gives the Client.

    Raises:
        ConnectionFailed: none is reachable within ``connect_timeout`` seconds, or two
            control planes answer for the cluster (the message names both). Raised
            by ``async with``, as are the others.
        AuthenticationFailed: the secret is refused (or missing on one side).
        ConfigurationError: a bad URL or secret, a TLS context for a ws:// URL, or an
            event loop other than trio or asyncio.
    """
    options: dict[str, Any] = {
        "cluster": cluster,
        "secret": secret,
        "connect_timeout": connect_timeout,
        "reconnect_timeout": reconnect_timeout,
        "max_payload": max_payload,
        "ssl_context": ssl_context,
        "link": link,
        "discovery_port": discovery_port,
    }
    return _OpenClient(url, options)


class _OpenClient(AbstractAsyncContextManager[Client]):
    """Picks the trio client or the asyncio bridge by the library running the block."""

    def __init__(self, url: str | None, options: dict[str, Any]) -> None:
        self._url = url
        self._options = options
        self._trio: AbstractAsyncContextManager[Client] | None = None
        self._bridge: Any = None

    async def __aenter__(self) -> Client:
        library = sniffio.current_async_library()
        if library == "trio":
            self._trio = open_trio_client(self._url, **self._options)
            return await self._trio.__aenter__()
        if library == "asyncio":
            from ._asyncio import open_asyncio_client

            self._bridge = open_asyncio_client(self._url, self._options)
            client: Client = await self._bridge.__aenter__()
            return client
        raise ConfigurationError(
            f"open_client runs under trio or asyncio, not {library}: "
            "from threads or sync code use fastworker.connect()"
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._trio is not None:
            return await self._trio.__aexit__(exc_type, exc, tb)
        if self._bridge is not None:
            result: bool | None = await self._bridge.__aexit__(exc_type, exc, tb)
            return result
        return None
