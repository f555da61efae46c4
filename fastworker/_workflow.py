"""The workflow graph the control plane holds: pure state machine, no trio, no I/O.

A ``Workflow`` is built from the packed node list a client submitted (root first;
see ``_decode`` for the format). The control plane tells it "member X finished with
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
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import msgpack

from ._messages import WireError

_IDLE, _ACTIVE, _DONE, _FAILED, _SKIPPED = 0, 1, 2, 3, 4

SEPARATOR = ":"
"""Member ids are ``<flow id>:<node index>``."""

PACKED_NONE = b"\xc0"
_NO_OPTIONS: tuple[int | None, float | None, bool] = (None, None, False)
_packer = msgpack.Packer(use_bin_type=True, autoreset=True)


class InvalidFlow(ValueError):
    """A submitted node list that is not a well-formed workflow."""


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items."""
    return bytes(_packer.pack_array_header(n))


def pack_list(values: Sequence[bytes]) -> bytes:
    """Packed values as one packed list (no decoding)."""
    return array_header(len(values)) + b"".join(values)


def with_first_argument(payload: bytes, value: bytes) -> bytes:
    """Packed ``[args, kwargs]`` with the packed ``value`` put before ``args``.

    Raises:
        ValueError: ``payload`` is not a packed ``[args, kwargs]``.
    """
    if len(payload) < 2 or payload[0] != 0x92:
        raise ValueError("task arguments must be packed as [args, kwargs]")
    head = payload[1]
    if 0x90 <= head <= 0x9F:
        n, start = head - 0x90, 2
    elif head == 0xDC:
        n, start = int.from_bytes(payload[2:4], "big"), 4
    elif head == 0xDD:
        n, start = int.from_bytes(payload[2:6], "big"), 6
    else:
        raise ValueError("task arguments must be packed as [args, kwargs]")
    return b"\x92" + array_header(n + 1) + value + payload[start:]


def _arguments_shape(payload: bytes) -> bool:
    """True if ``payload`` starts like a packed ``[args, kwargs]`` (what
    ``with_first_argument`` needs; the executor checks the rest)."""
    if len(payload) < 3 or payload[0] != 0x92:
        return False
    head = payload[1]
    return (
        0x90 <= head <= 0x9F
        or (head == 0xDC and len(payload) > 4)
        or (head == 0xDD and len(payload) > 6)
    )


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


TASK, CHAIN, GROUP, CHORD = 0, 1, 2, 3
KIND_NAMES = ("task", "chain", "group", "chord")


def encode_task(
    name: str,
    payload: bytes,
    priority: int | None = None,
    countdown: float | None = None,
    immutable: bool = False,
) -> list[Any]:
    """A task node of the packed format."""
    if priority is None and countdown is None and not immutable:
        return [name, payload]
    return [name, payload, priority, countdown, immutable]


def encode_composite(kind: int, children: list[int]) -> list[Any]:
    """A chain, group or chord node of the packed format."""
    return [kind, children]


def pack_nodes(nodes: list[list[Any]]) -> bytes:
    """The packed format: a msgpack list of nodes, root first."""
    return bytes(_packer.pack(nodes))


_Decoded = tuple[bytearray, list[str], list[bytes | None], dict[int, Any], dict[int, list[int]]]


def _decode(data: bytes) -> _Decoded:
    """Parse and validate the packed format (InvalidFlow says what is wrong).

    Format: a list of nodes, root first. A task node is ``[name, payload]`` or
    ``[name, payload, priority, countdown, immutable]``; a chain, group or chord node is
    ``[kind, [child index, ...]]`` (kind 1, 2, 3; a chord's children are its group and
    its body). Every node but the root has exactly one parent, listed before it.
    """
    try:
        rows = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:
        raise InvalidFlow(f"the workflow is not packed as a node list ({exc})") from None
    if not isinstance(rows, list) or not rows:
        raise InvalidFlow("a workflow needs at least one node")
    size = len(rows)
    kinds = bytearray(size)
    names: list[str] = [""] * size
    payloads: list[bytes | None] = [None] * size
    options: dict[int, Any] = {}
    children: dict[int, list[int]] = {}
    interned: dict[str, str] = {}
    seen = bytearray(size)
    seen[0] = 1
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) not in (2, 5):
            raise InvalidFlow(f"node {index} is malformed")
        head = row[0]
        if isinstance(head, str):
            payload = row[1]
            if not head or not isinstance(payload, bytes) or not _arguments_shape(payload):
                raise InvalidFlow(f"node {index} is a task without a name or packed arguments")
            names[index] = interned.setdefault(head, head)
            payloads[index] = payload
            if len(row) == 5:
                priority, countdown, immutable = row[2], row[3], row[4]
                if not (priority is None or (type(priority) is int and 0 <= priority <= 3)):
                    raise InvalidFlow(f"node {index} has an invalid priority {priority!r}")
                if not (
                    countdown is None or (isinstance(countdown, int | float) and countdown >= 0)
                ):
                    raise InvalidFlow(f"node {index} has an invalid countdown {countdown!r}")
                if priority is not None or countdown is not None or immutable:
                    options[index] = (priority, countdown, bool(immutable))
            continue
        kids = row[1]
        if (
            type(head) is not int
            or head not in (CHAIN, GROUP, CHORD)
            or len(row) != 2
            or not isinstance(kids, list)
            or not all(type(k) is int for k in kids)
        ):
            raise InvalidFlow(f"node {index} is malformed")
        kinds[index] = head
        if head == CHAIN and not kids:
            raise InvalidFlow(f"node {index} is a chain without members")
        for child in kids:
            if not index < child < size:
                raise InvalidFlow(f"node {index} refers to node {child}, which is not after it")
            if seen[child]:
                raise InvalidFlow(f"node {child} has two parents")
            seen[child] = 1
        children[index] = kids
    for index, kids in children.items():
        if kinds[index] == CHORD and (len(kids) != 2 or kinds[kids[0]] != GROUP):
            raise InvalidFlow(f"node {index} is a chord without a group and a body")
    if not all(seen):
        raise InvalidFlow(f"node {seen.index(0)} is not part of the workflow")
    return kinds, names, payloads, options, children


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
        self.kinds, self.names, self.payloads, self.options, self.children = _decode(packed)
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
