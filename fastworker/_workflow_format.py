"""The packed workflow format: how a client's canvas travels, and packed-value helpers.

A workflow is submitted as one msgpack list of nodes, root first (``pack_nodes``; the
client's canvas builds it with ``encode_task`` and ``encode_composite``), and the control
plane reads it back with ``decode_nodes``, which says what is wrong with a malformed one
(``InvalidFlow``). Values stay packed msgpack bytes: ``pack_list`` makes a group's list
from its members' packed values and ``with_first_argument`` puts a value before a
member's packed arguments, without decoding either. Pure: no trio, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

PACKED_NONE = b"\xc0"
"""``None``, packed."""
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


def decode_nodes(data: bytes) -> _Decoded:
    """Parse and validate the packed format: (kinds, names, payloads, options, children).

    Format: a list of nodes, root first. A task node is ``[name, payload]`` or
    ``[name, payload, priority, countdown, immutable]``; a chain, group or chord node is
    ``[kind, [child index, ...]]`` (kind 1, 2, 3; a chord's children are its group and
    its body). Every node but the root has exactly one parent, listed before it.

    Raises:
        InvalidFlow: ``data`` is not such a list; the message says which node is wrong.
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
