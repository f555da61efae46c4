"""Workflow signatures: ``sig``, ``chain``, ``group`` and ``chord`` (immutable values).

A workflow is built from these on the client and submitted with ``client.delay(flow)``
as one flat list of nodes (``FlowNode``): each task member carries only its own name,
its own packed arguments and its options; the structure is a list of child indexes.
The control plane holds the graph and passes values from member to member itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Union

import attrs

from ._errors import ConfigurationError, FastWorkerError
from ._model import Priority
from ._serialization import DEFAULT_MAX_PAYLOAD, pack_arguments
from ._workflow import CHAIN, CHORD, GROUP, encode_composite, encode_task, pack_nodes

__all__ = ["Chain", "Chord", "Flow", "Group", "Signature", "chain", "chord", "group", "sig"]


def task_name(task: Any) -> str:
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


def priority_number(priority: Priority | str | int) -> int:
    """A priority option (a Priority, its name or its number) as its number.

    Raises:
        ConfigurationError: not a known priority.
    """
    try:
        return int(Priority.parse(priority))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def countdown_seconds(countdown: Any) -> float:
    """A countdown option as seconds from now (negative ones as 0).

    Raises:
        ConfigurationError: not a finite number.
    """
    if (
        not isinstance(countdown, int | float)
        or isinstance(countdown, bool)
        or not math.isfinite(countdown)
    ):
        raise ConfigurationError(f"countdown must be a number of seconds, got {countdown!r}")
    return max(0.0, float(countdown))

@attrs.frozen
class Signature:
    """One task call in a workflow: a name, its own arguments and options.

    Made by ``sig(task, *args, **kwargs)``. In a chain it gets the previous member's
    value as its first positional argument, unless it is ``immutable``.
    """

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    priority: int | None = None
    countdown: float | None = None
    immutable: bool = False

    def set(
        self,
        *,
        priority: Priority | str | int | None = None,
        countdown: float | None = None,
        immutable: bool | None = None,
    ) -> Signature:
        """A new signature with these options changed (the others kept).

        Raises:
            ConfigurationError: an unknown priority or a countdown that is not a number.
        """
        changes: dict[str, Any] = {}
        if priority is not None:
            changes["priority"] = priority_number(priority)
        if countdown is not None:
            changes["countdown"] = countdown_seconds(countdown)
        if immutable is not None:
            changes["immutable"] = bool(immutable)
        return attrs.evolve(self, **changes)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        text = f"sig({self.name!r}{''.join(', ' + p for p in parts)})"
        options = []
        if self.priority is not None:
            options.append(f"priority={Priority(self.priority).name.lower()!r}")
        if self.countdown is not None:
            options.append(f"countdown={self.countdown!r}")
        if self.immutable:
            options.append("immutable=True")
        return text + (f".set({', '.join(options)})" if options else "")


@attrs.frozen
class Chain:
    """Members run in order; each gets the previous value (see ``chain``)."""

    members: tuple[Flow, ...]


@attrs.frozen
class Group:
    """Members run at once; the value is the list of their values (see ``group``)."""

    members: tuple[Flow, ...]


@attrs.frozen
class Chord:
    """A group, then a callback with the list of the group's values (see ``chord``)."""

    header: Group
    body: Flow


Flow = Union[Signature, Chain, Group, Chord]  # noqa: UP007 (a runtime alias)
"""Anything ``client.delay`` takes as a workflow."""

_FLOW_TYPES = (Signature, Chain, Group, Chord)
FLOWS = _FLOW_TYPES
"""What ``client.delay`` and ``client.call`` take as a workflow (for isinstance)."""


def sig(task: Any, /, *args: Any, **kwargs: Any) -> Signature:
    """A signature: ``task`` (a @task function or its name) with its own arguments.

    Raises:
        ConfigurationError: ``task`` is neither a @task function nor a name.
    """
    return Signature(task_name(task), tuple(args), dict(kwargs))


def _members(what: str, members: Iterable[Any]) -> tuple[Flow, ...]:
    found = tuple(members)
    for index, member in enumerate(found):
        if not isinstance(member, _FLOW_TYPES):
            raise ConfigurationError(
                f"{what} member {index} is {member!r}: members are sig(...), chain(...), "
                "group(...) or chord(...)"
            )
    return found


def chain(*members: Flow) -> Chain:
    """Run ``members`` one after another; each gets the previous member's value.

    The value passes as the first positional argument (not to an immutable signature);
    a group or chord in the chain gives it to each of its members. The chain's value is
    the last member's. It stops at the first member that fails for good.

    Raises:
        ConfigurationError: no members, or a member that is not a workflow.
    """
    found = _members("chain", members)
    if not found:
        raise ConfigurationError("chain() needs at least one member")
    return Chain(found)


def group(*members: Flow | Iterable[Flow]) -> Group:
    """Run ``members`` at once; the value is the list of their values, in order.

    ``group(a, b)`` or ``group([a, b])`` (a generator works too). Fails fast: the first
    member that fails for good cancels the unfinished others and fails the group.

    Raises:
        ConfigurationError: a member that is not a workflow.
    """
    if len(members) == 1 and not isinstance(members[0], _FLOW_TYPES):
        return Group(_members("group", members[0]))
    return Group(_members("group", members))


def chord(header: Group | Iterable[Flow], body: Flow) -> Chord:
    """Run ``header`` (a group), then ``body`` with the list of its values.

    The chord's value is the body's. A header that fails fails the chord; the body
    never runs. The body completes on a counter in the control plane, never a poller.

    Raises:
        ConfigurationError: a member or a body that is not a workflow.
    """
    if not isinstance(header, Group):
        header = group(header)
    if not isinstance(body, _FLOW_TYPES):
        raise ConfigurationError(
            f"the chord's body is {body!r}: use sig(...) (or another workflow)"
        )
    return Chord(header, body)


def is_flow(value: Any) -> bool:
    """True for a Chain, Group or Chord (a Signature is a single task)."""
    return isinstance(value, Chain | Group | Chord)


def flatten(flow: Flow, *, limit: int = DEFAULT_MAX_PAYLOAD, priority: int | None = None) -> bytes:
    """The workflow packed as a flat node list (root first; children by index).

    Each task member's own arguments are packed here (NotSerializable and
    PayloadTooLarge name the member); ``priority`` is the default of members without
    their own. Iterative, so nesting of any depth works.
    """
    rows: list[list[Any]] = []
    # (flow, parent index or -1): parents get their index before their children.
    stack: list[tuple[Flow, int]] = [(flow, -1)]
    while stack:
        item, parent = stack.pop()
        index = len(rows)
        if parent >= 0:
            rows[parent][1].append(index)
        if isinstance(item, Signature):
            try:
                payload = pack_arguments(item.args, item.kwargs, limit=limit)
            except FastWorkerError as exc:
                raise type(exc)(f"workflow member {item!r}: {exc}") from None
            prio = item.priority if item.priority is not None else priority
            rows.append(encode_task(item.name, payload, prio, item.countdown, item.immutable))
            continue
        if isinstance(item, Chain):
            kind, subs = CHAIN, item.members
        elif isinstance(item, Group):
            kind, subs = GROUP, item.members
        else:
            kind, subs = CHORD, (item.header, item.body)
        rows.append(encode_composite(kind, []))
        # Pushed in reverse so children get their indexes in order (depth first).
        for sub in reversed(subs):
            stack.append((sub, index))
    return pack_nodes(rows)
