"""The workflow graph the control plane holds: pure state machine, no trio, no I/O.

A ``Workflow`` is built from the packed node list a client submitted (root first; the
format is in ``_workflow_format``). The control plane tells it "member X finished with
outcome Y" and it answers with ``Effects``: which members to start now (with their
payloads: the member's own arguments with the incoming value put first), which active
members to cancel, which never-started members end cancelled, and, once the flow is
over, its outcome. Values stay packed msgpack bytes: a group's list is an array header plus
its members' packed values, so the control plane never decodes a value.

Rules (DESIGN 2.4): a chain runs its members in order, each gets the previous value
as its first positional argument (not if immutable); a group runs its members at once
and its value is the list of their values; a chord runs its group, then its body with
the list, completing on a counter. Any member that fails for good (or ends cancelled)
decides the flow: every active member is cancelled, every member not started yet ends
cancelled; the flow's outcome is published once no member is active any more.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable

import attrs

from ._messages import WireError
from ._workflow_format import (
    CHAIN,
    GROUP,
    KIND_NAMES,
    PACKED_NONE,
    TASK,
    array_header,
    decode_nodes,
    pack_list,
    with_first_argument,
)

# The format's names the canvas, the control plane and tests import from here too.
from ._workflow_format import CHORD as CHORD
from ._workflow_format import InvalidFlow as InvalidFlow
from ._workflow_format import encode_composite as encode_composite
from ._workflow_format import encode_task as encode_task
from ._workflow_format import pack_nodes as pack_nodes

_IDLE, _ACTIVE, _DONE, _FAILED, _SKIPPED = 0, 1, 2, 3, 4

SEPARATOR = ":"
"""Member ids are ``<flow id>:<node index>``."""

_NO_OPTIONS: tuple[int | None, float | None, bool] = (None, None, False)


@attrs.frozen
class Start:
    """Start member ``index`` as task ``id`` with these arguments and options."""

    index: int
    id: str
    name: str
    payload: bytes
    priority: int | None
    countdown: float | None


@attrs.frozen
class FlowOutcome:
    """How the flow ended: a TaskStatus value, the packed value or the error."""

    status: str
    value: bytes | None = None
    error: WireError | None = None


@attrs.define
class Effects:
    """What the control plane must do after a graph step."""

    starts: list[Start] = attrs.field(factory=list)
    cancels: list[str] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    done: FlowOutcome | None = None


NOTHING = Effects()
"""The shared answer of a step with no effects (never modified)."""


class Workflow:
    """One workflow's graph and the state of each node.

    Compact on purpose (a chord may have tens of thousands of members): per node a kind
    byte, a state byte, a parent and a counter in arrays, an interned name, the packed
    arguments until the member starts, and its value only while its group waits.
    """

    __slots__ = (
        "_fx",
        "_work",
        "active",
        "children",
        "counter",
        "decided",
        "id",
        "kinds",
        "names",
        "options",
        "parent",
        "payloads",
        "published",
        "state",
        "values",
    )

    def __init__(self, flow_id: str, packed: bytes) -> None:
        self.kinds, self.names, self.payloads, self.options, self.children = decode_nodes(packed)
        self.id = flow_id
        size = len(self.kinds)
        self.parent = array("i", [-1]) * size
        for index, kids in self.children.items():
            for child in kids:
                self.parent[child] = index
        self.state = bytearray(size)
        self.counter = array("i", [0]) * size
        self.values: dict[int, bytes] = {}
        self.active: set[int] = set()
        self.decided: FlowOutcome | None = None
        self.published = False
        self._fx = Effects()
        self._work: deque[tuple[bool, int, bytes | None]] = deque()

    # -- ids ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The root's kind ("chain", "group", "chord" or "task")."""
        return KIND_NAMES[self.kinds[0]]

    def name_of(self, index: int) -> str:
        """The task name of node ``index`` ("" for a chain, group or chord)."""
        return self.names[index]

    def member_id(self, index: int) -> str:
        """The task id of task node ``index``."""
        return f"{self.id}{SEPARATOR}{index}"

    def index_of(self, member_id: str) -> int | None:
        """The node index of a member id of this flow, or None."""
        prefix, sep, tail = member_id.rpartition(SEPARATOR)
        if prefix != self.id or not sep:
            return None
        return self.task_index(tail)

    def task_index(self, tail: str) -> int | None:
        """The index of the task node named by ``tail`` (the text after the separator)."""
        if not tail.isdigit():
            return None
        index = int(tail)
        if index >= len(self.kinds) or self.kinds[index] != TASK:
            return None
        return index

    def pending(self, index: int) -> bool:
        """True for a member that has not started (and may still)."""
        return self.state[index] == _IDLE and self.decided is None

    def members(self) -> list[tuple[str, str, str]]:
        """(member id, task name, state) of every member, in node order.

        The state is "pending" (not started), "active" (a task now), "success",
        "failed" (failure or cancelled) or "skipped" (never started: the flow ended).
        """
        names = ("pending", "active", "success", "failed", "skipped")
        return [
            (self.member_id(i), self.names[i], names[self.state[i]])
            for i, kind in enumerate(self.kinds)
            if kind == TASK
        ]

    def member_ids(self) -> list[str]:
        """Every task member's id, in node order."""
        return [self.member_id(i) for i, kind in enumerate(self.kinds) if kind == TASK]

    @property
    def terminal(self) -> bool:
        """True once the outcome is decided and no member is active."""
        return self.decided is not None and not self.active

    # -- steps ----------------------------------------------------------------------
    def start(self, incoming: bytes | None = None) -> Effects:
        """Activate the root: the first members to start."""
        self._work.append((True, 0, incoming))
        return self._run()

    def finished(
        self, index: int, status: str, value: bytes | None = None, error: WireError | None = None
    ) -> Effects:
        """Member ``index`` ended with ``status`` (a terminal TaskStatus value)."""
        if index not in self.active:
            return self._run()  # not ours (fenced, or a repeat)
        self.active.discard(index)
        if status == "success":
            if self.decided is None:
                self._work.append((False, index, value if value is not None else PACKED_NONE))
        else:
            self.state[index] = _FAILED
            if self.decided is None:
                self._decide(FlowOutcome(status, None, error))
        return self._run()

    def cancel(self, error: WireError) -> Effects | None:
        """Cancel the whole flow; None if its outcome was already decided."""
        if self.decided is not None:
            return None
        self._decide(FlowOutcome("cancelled", None, error))
        return self._run()

    def status(self, member_status: Callable[[str], str | None]) -> str:
        """The flow's status: running once any member started, else the first member's."""
        if self.decided is not None:
            return "running"
        first = None
        for index in sorted(self.active):
            status = member_status(self.member_id(index))
            if status == "running" or status == "retrying":
                return "running"
            if first is None:
                first = status
        if any(s in (_DONE, _FAILED) for s in self.state):
            return "running"
        return first or "pending"

    # -- the machine ----------------------------------------------------------------
    def _decide(self, outcome: FlowOutcome) -> None:
        self.decided = outcome
        self._work.clear()
        fx = self._fx
        fx.cancels.extend(self.member_id(i) for i in sorted(self.active))
        state, kinds = self.state, self.kinds
        for index in range(len(kinds)):
            if kinds[index] == TASK and state[index] == _IDLE:
                state[index] = _SKIPPED
                fx.skipped.append(self.member_id(index))
        self.values = {}
        self.payloads = []

    def _run(self) -> Effects:
        work = self._work
        while work and self.decided is None:
            activate, index, value = work.popleft()
            if activate:
                self._activate(index, value)
            else:
                self._complete(index, value if value is not None else PACKED_NONE)
        fx = self._fx
        if self.decided is not None and not self.active and not self.published:
            self.published = True
            fx.done = self.decided
        if not (fx.starts or fx.cancels or fx.skipped or fx.done):
            return NOTHING  # the common step (a group member done): nothing to allocate
        self._fx = Effects()
        return fx

    def _activate(self, index: int, incoming: bytes | None) -> None:
        self.state[index] = _ACTIVE
        kind = self.kinds[index]
        if kind == TASK:
            payload = self.payloads[index]
            self.payloads[index] = None  # the task holds it from now on
            assert payload is not None
            priority, countdown, immutable = self.options.get(index, _NO_OPTIONS)
            if incoming is not None and not immutable:
                payload = with_first_argument(payload, incoming)
            self.active.add(index)
            self._fx.starts.append(
                Start(index, self.member_id(index), self.names[index], payload, priority, countdown)
            )
        elif kind == GROUP:
            kids = self.children[index]
            self.counter[index] = len(kids)
            if not kids:
                self._work.append((False, index, array_header(0)))
            for child in kids:
                self._work.append((True, child, incoming))
        else:  # chain, chord: the first child gets the incoming value
            self.counter[index] = 0
            self._work.append((True, self.children[index][0], incoming))

    def _complete(self, index: int, value: bytes) -> None:
        self.state[index] = _DONE
        parent = self.parent[index]
        if parent < 0:
            self.decided = FlowOutcome("success", value)
            return
        kind = self.kinds[parent]
        kids = self.children[parent]
        if kind == GROUP:
            self.values[index] = value
            left = self.counter[parent] - 1
            self.counter[parent] = left
            if left == 0:
                values = self.values
                packed = pack_list([values.pop(c, PACKED_NONE) for c in kids])
                self._work.append((False, parent, packed))
        elif kind == CHAIN:
            step = self.counter[parent] + 1
            self.counter[parent] = step
            if step < len(kids):
                self._work.append((True, kids[step], value))
            else:
                self._work.append((False, parent, value))
        elif index == kids[0]:  # a chord's group: the body gets its list
            self._work.append((True, kids[1], value))
        else:  # a chord's body
            self._work.append((False, parent, value))
