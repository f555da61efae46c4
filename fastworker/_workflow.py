"""The workflow graph the control plane holds: pure state machine, no trio, no I/O.

A ``Workflow`` is built from the flat node list a client submitted (``FlowNode``,
root first). The control plane tells it "member X finished with outcome Y" and it
answers with ``Effects``: which members to start now (with their payloads: the
member's own arguments with the incoming value put first), which active members to
cancel, which never-started members end cancelled, and, once the flow is over, its
outcome. Values stay packed msgpack bytes: a group's list is an array header plus
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

import attrs
import msgpack

from ._messages import FlowNode, WireError

KINDS = ("task", "chain", "group", "chord")

_IDLE, _ACTIVE, _DONE, _FAILED, _SKIPPED = 0, 1, 2, 3, 4

SEPARATOR = ":"
"""Member ids are ``<flow id>:<node index>``."""

PACKED_NONE = b"\xc0"
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


def validate(nodes: Sequence[FlowNode]) -> None:
    """Check the node list is a tree rooted at 0 with well-formed nodes.

    Raises:
        InvalidFlow: what is wrong, naming the node.
    """
    if not nodes:
        raise InvalidFlow("a workflow needs at least one node")
    seen = bytearray(len(nodes))
    seen[0] = 1
    for index, node in enumerate(nodes):
        if node.kind not in KINDS:
            raise InvalidFlow(f"node {index} has an unknown kind {node.kind!r}")
        if node.kind == "task":
            if not node.name:
                raise InvalidFlow(f"node {index} is a task without a name")
            if node.children:
                raise InvalidFlow(f"node {index} is a task with children")
            continue
        if node.kind == "chain" and not node.children:
            raise InvalidFlow(f"node {index} is a chain without members")
        if node.kind == "chord":
            if len(node.children) != 2:
                raise InvalidFlow(f"node {index} is a chord without exactly a group and a body")
            header = node.children[0]
            if 0 < header < len(nodes) and nodes[header].kind != "group":
                raise InvalidFlow(f"node {index} is a chord whose header is not a group")
        for child in node.children:
            if not index < child < len(nodes):
                raise InvalidFlow(f"node {index} refers to node {child}, which is not after it")
            if seen[child]:
                raise InvalidFlow(f"node {child} has two parents")
            seen[child] = 1
    if not all(seen):
        raise InvalidFlow(f"node {seen.index(0)} is not part of the workflow")


class Workflow:
    """One workflow's graph and the state of each node."""

    __slots__ = (
        "_fx",
        "_work",
        "active",
        "counter",
        "decided",
        "id",
        "nodes",
        "parent",
        "published",
        "state",
        "values",
    )

    def __init__(self, flow_id: str, nodes: list[FlowNode]) -> None:
        validate(nodes)
        self.id = flow_id
        self.nodes = nodes
        size = len(nodes)
        self.parent = array("i", [-1]) * size
        for index, node in enumerate(nodes):
            for child in node.children:
                self.parent[child] = index
        self.state = bytearray(size)
        self.counter = array("i", [0]) * size
        self.values: list[bytes | None] = [None] * size
        self.active: set[int] = set()
        self.decided: FlowOutcome | None = None
        self.published = False
        self._fx = Effects()
        self._work: deque[tuple[bool, int, bytes | None]] = deque()

    # -- ids ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The root's kind ("chain", "group", "chord" or "task")."""
        return self.nodes[0].kind

    def member_id(self, index: int) -> str:
        """The task id of task node ``index``."""
        return f"{self.id}{SEPARATOR}{index}"

    def index_of(self, member_id: str) -> int | None:
        """The node index of a member id of this flow, or None."""
        prefix, sep, tail = member_id.rpartition(SEPARATOR)
        if prefix != self.id or not sep or not tail.isdigit():
            return None
        index = int(tail)
        if index >= len(self.nodes) or self.nodes[index].kind != "task":
            return None
        return index

    def member_ids(self) -> list[str]:
        """Every task member's id, in node order."""
        return [self.member_id(i) for i, n in enumerate(self.nodes) if n.kind == "task"]

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
        state = self.state
        for index, node in enumerate(self.nodes):
            if node.kind == "task" and state[index] == _IDLE:
                state[index] = _SKIPPED
                fx.skipped.append(self.member_id(index))
        self.values = [None] * len(self.nodes)

    def _run(self) -> Effects:
        work = self._work
        while work and self.decided is None:
            activate, index, value = work.popleft()
            if activate:
                self._activate(index, value)
            else:
                self._complete(index, value if value is not None else PACKED_NONE)
        fx, self._fx = self._fx, Effects()
        if self.decided is not None and not self.active and not self.published:
            self.published = True
            fx.done = self.decided
        return fx

    def _activate(self, index: int, incoming: bytes | None) -> None:
        node = self.nodes[index]
        self.state[index] = _ACTIVE
        kind = node.kind
        if kind == "task":
            payload = node.payload
            if incoming is not None and not node.immutable:
                payload = with_first_argument(payload, incoming)
            self.active.add(index)
            self._fx.starts.append(
                Start(
                    index, self.member_id(index), node.name, payload, node.priority, node.countdown
                )
            )
        elif kind == "group":
            self.counter[index] = len(node.children)
            if not node.children:
                self._work.append((False, index, array_header(0)))
            for child in node.children:
                self._work.append((True, child, incoming))
        else:  # chain, chord: the first child gets the incoming value
            self.counter[index] = 0
            self._work.append((True, node.children[0], incoming))

    def _complete(self, index: int, value: bytes) -> None:
        self.state[index] = _DONE
        parent = self.parent[index]
        if parent < 0:
            self.decided = FlowOutcome("success", value)
            return
        node = self.nodes[parent]
        if node.kind == "group":
            self.values[index] = value
            left = self.counter[parent] - 1
            self.counter[parent] = left
            if left == 0:
                values = self.values
                packed = pack_list([values[c] or PACKED_NONE for c in node.children])
                for child in node.children:
                    values[child] = None
                self._work.append((False, parent, packed))
        elif node.kind == "chain":
            step = self.counter[parent] + 1
            self.counter[parent] = step
            if step < len(node.children):
                self._work.append((True, node.children[step], value))
            else:
                self._work.append((False, parent, value))
        elif index == node.children[0]:  # a chord's group: the body gets its list
            self._work.append((True, node.children[1], value))
        else:  # a chord's body
            self._work.append((False, parent, value))


def encode_nodes(nodes: Sequence[FlowNode]) -> bytes:
    """The node list as bytes (for the journal)."""
    return bytes(
        _packer.pack(
            [
                [n.kind, n.name, n.payload, n.priority, n.countdown, n.immutable, n.children]
                for n in nodes
            ]
        )
    )


def decode_nodes(data: bytes) -> list[FlowNode]:
    """What ``encode_nodes`` made."""
    rows = msgpack.unpackb(data, raw=False)
    return [
        FlowNode(kind, name, payload, prio, countdown, immutable, list(children))
        for kind, name, payload, prio, countdown, immutable, children in rows
    ]
