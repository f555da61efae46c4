"""Submissions: submit, delay (typed overloads, workflows) and delay_batch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, overload

import actors

from .._canvas import (
    FLOWS,
    Chain,
    Chord,
    Group,
    Signature,
    countdown_seconds,
    flatten,
    priority_number,
)
from .._errors import ConfigurationError, FastWorkerError, PayloadTooLarge
from .._messages import Submission, Submit, SubmitFlow
from .._model import Priority
from .._serialization import pack_arguments
from ._events import EventsMixin
from ._outcomes import task_name
from ._types import BatchItem, P, PriorityLike, TaskRef, When

# A frame the control plane could not take (over its own limit) closes the link with 1009.
_CLOSE_TOO_BIG = 1009
_SERVER_FRAME_DEFAULT = 16 * 1024 * 1024


class SubmittingMixin(EventsMixin):
    """Packing and sending tasks and workflows; the acknowledgement gives their ids."""

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
            delay = countdown_seconds(countdown)
        elif eta is not None:
            if isinstance(eta, datetime):
                if eta.tzinfo is None:
                    raise ConfigurationError("eta must be a timezone-aware datetime")
                when = eta.timestamp()
            elif isinstance(eta, int | float) and math.isfinite(eta):
                when = float(eta)
            else:
                raise ConfigurationError(f"eta must be a datetime or a timestamp, got {eta!r}")
        prio = None if priority is None else priority_number(priority)
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
    async def delay(self, task: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> str: ...
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
        prio = None if priority is None else priority_number(priority)
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
                    # A refusal of the workflow itself says why in its own words.
                    if isinstance(exc, actors.RemoteError) and exc.type_name == "FastWorkerError":
                        raise FastWorkerError(exc.message) from None
                    raise self._translate(exc) from None
        finally:
            self._submitting.difference_update(ids)
