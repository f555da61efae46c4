"""The workflow graph (fastworker._workflow) on its own: no trio, no control plane."""

from __future__ import annotations

import msgpack
import pytest

from fastworker import chain, chord, group, sig
from fastworker._canvas import flatten
from fastworker._messages import WireError
from fastworker._serialization import pack, unpack_arguments
from fastworker._workflow import (
    CHAIN,
    CHORD,
    GROUP,
    InvalidFlow,
    Workflow,
    pack_list,
    pack_nodes,
    with_first_argument,
)

ERROR = WireError("ValueError", "bad")


def args_of(payload: bytes) -> list:
    return unpack_arguments(payload)[0]


def run_all(flow: Workflow, results: dict[str, object]) -> list[tuple[str, list]]:
    """Drive the flow to its end: each started member succeeds with ``results[name]``
    (a callable of its args, or a constant); returns (name, args) in start order."""
    seen = []
    pending = list(flow.start().starts)
    outcome = None
    while pending:
        start = pending.pop(0)
        args = args_of(start.payload)
        seen.append((start.name, args))
        value = results[start.name]
        value = value(*args) if callable(value) else value
        fx = flow.finished(start.index, "success", pack(value, what="v"))
        pending += fx.starts
        if fx.done is not None:
            outcome = fx.done
    assert outcome is not None and flow.terminal
    return [*seen, ("=", [outcome.status, msgpack.unpackb(outcome.value)])]


def test_with_first_argument_puts_the_value_first_for_every_array_size() -> None:
    """The value is prepended without decoding the arguments, for fix, 16- and 32-bit
    array headers; keyword arguments are kept."""
    for n in (0, 3, 15, 16, 70_000):
        payload = pack([list(range(n)), {"k": "v"}], what="a", limit=10**8)
        args, kwargs = unpack_arguments(with_first_argument(payload, pack("x", what="v")))
        assert args == ["x", *range(n)] and kwargs == {"k": "v"}
    with pytest.raises(ValueError):
        with_first_argument(b"\x91\x90", b"\xc0")
    assert msgpack.unpackb(pack_list([b"\x01", b"\xc0"])) == [1, None]


def test_a_chain_passes_each_value_to_the_next_member_unless_immutable() -> None:
    """chain(a, b, c): b gets a's value first, c is immutable and gets only its own
    arguments; the chain's value is the last member's."""
    nodes = flatten(chain(sig("a", 1), sig("b", 10), sig("c", 7).set(immutable=True)))
    seen = run_all(
        Workflow("f", nodes), {"a": lambda x: x + 1, "b": lambda v, y: v * y, "c": lambda z: z}
    )
    assert seen == [("a", [1]), ("b", [2, 10]), ("c", [7]), ("=", ["success", 7])]


def test_a_group_starts_all_members_at_once_and_lists_their_values_in_order() -> None:
    """group(a, b, c) starts the three together; values are listed in member order even
    when they finish in reverse."""
    flow = Workflow("g", flatten(group(sig("a"), sig("b"), sig("c"))))
    starts = flow.start().starts
    assert [s.name for s in starts] == ["a", "b", "c"]
    assert flow.finished(starts[2].index, "success", b"\x03").done is None
    assert flow.finished(starts[1].index, "success", b"\x02").done is None
    done = flow.finished(starts[0].index, "success", b"\x01").done
    assert done is not None and msgpack.unpackb(done.value) == [1, 2, 3]


def test_a_chord_in_a_chain_gives_the_previous_value_to_each_member_then_the_list() -> None:
    """chain(a, chord(group(b, c), d)): b and c get a's value; d gets [b, c]."""
    flow = Workflow("h", flatten(chain(sig("a"), chord(group(sig("b"), sig("c", 1)), sig("d")))))
    seen = run_all(flow, {"a": 5, "b": lambda v: v + 1, "c": lambda v, w: v * 10 + w, "d": sum})
    assert seen[:3] == [("a", []), ("b", [5]), ("c", [5, 1])]
    assert seen[3:] == [("d", [[6, 51]]), ("=", ["success", 57])]


def test_nesting_of_any_depth() -> None:
    """A chain nested 3,000 deep (deeper than Python's recursion limit) flattens, runs
    and passes its value through every level."""
    flow = sig("inc", 0)
    for _ in range(3000):
        flow = chain(flow, sig("inc"))
    seen = run_all(Workflow("deep", flatten(flow)), {"inc": lambda x=0: x + 1})
    assert seen[-1] == ("=", ["success", 3001])


def test_an_empty_group_is_an_empty_list() -> None:
    """chord(group(), cb) calls cb([])."""
    seen = run_all(Workflow("e", flatten(chord(group(), sig("cb")))), {"cb": len})
    assert seen == [("cb", [[]]), ("=", ["success", 0])]


def test_a_failure_in_a_group_cancels_active_siblings_and_skips_what_never_started() -> None:
    """chain(group(a, b, c), d): b fails, so a and c are to be cancelled, d never
    starts (skipped), and the flow's outcome (b's error) waits until a and c ended."""
    flow = Workflow("x", flatten(chain(group(sig("a"), sig("b"), sig("c")), sig("d"))))
    a, b, c = flow.start().starts
    fx = flow.finished(b.index, "failure", None, ERROR)
    assert fx.cancels == [a.id, c.id]
    assert fx.skipped == ["x:5"] and fx.done is None and fx.starts == []
    assert flow.finished(a.index, "cancelled", None, WireError("TaskCancelled", "x")).done is None
    done = flow.finished(c.index, "success", b"\x01").done  # finished before its cancel
    assert done is not None and done.status == "failure" and done.error == ERROR
    assert flow.cancel(ERROR) is None  # decided already


def test_cancel_decides_cancelled_and_a_member_outcome_twice_is_ignored() -> None:
    """cancel() cancels the active members and ends the flow cancelled once they ended;
    a repeated outcome for a member is ignored."""
    flow = Workflow("y", flatten(chain(sig("a"), sig("b"))))
    (a,) = flow.start().starts
    fx = flow.cancel(WireError("TaskCancelled", "by request"))
    assert fx is not None and fx.cancels == [a.id] and fx.skipped == ["y:2"]
    done = flow.finished(a.index, "cancelled").done
    assert done is not None and done.status == "cancelled"
    assert flow.finished(a.index, "cancelled").done is None


def test_member_ids_and_validation() -> None:
    """Member ids map back to their nodes; malformed node lists are refused."""
    flow = Workflow("f:1", flatten(group(sig("a"), sig("b"))))
    assert flow.member_ids() == ["f:1:1", "f:1:2"]
    assert flow.index_of("f:1:2") == 2 and flow.index_of("f:1:0") is None
    assert flow.index_of("f:12") is None
    bad = [
        b"not msgpack \xc1",
        pack_nodes([]),
        pack_nodes([[CHAIN, []]]),
        pack_nodes([[7, []]]),
        pack_nodes([[GROUP, [0]]]),
        pack_nodes([[GROUP, [1, 1]], ["a", b"\x92\x90\x80"]]),
        pack_nodes([["a", b"\x92\x90\x80"], ["b", b"\x92\x90\x80"]]),
        pack_nodes([[CHORD, [1, 2]], ["a", b"\x92\x90\x80"], ["b", b"\x92\x90\x80"]]),
        pack_nodes([["a", b"\x92\x90\x80", 9, None, False]]),
        pack_nodes([["a", b"\x92\x90\x80", None, -1, False]]),
        pack_nodes([["", b"\x92\x90\x80"]]),
        pack_nodes([["a", b"\x91\x90"]]),
        pack_nodes([["a", b"\x92\xc0\x80"]]),
    ]
    for packed in bad:
        with pytest.raises(InvalidFlow):
            Workflow("bad", packed)


def test_member_options_reach_their_start() -> None:
    """priority and countdown set on a signature (or the default priority) come out with
    the member's start; members without options use the flow's default priority."""
    flow = group(sig("a", 1, k=2).set(priority="high", countdown=3), sig("b"))
    a, b = Workflow("o", flatten(flow, priority=3)).start().starts
    assert (a.name, a.priority, a.countdown) == ("a", 1, 3.0)
    assert (b.name, b.priority, b.countdown) == ("b", 3, None)
    assert unpack_arguments(a.payload) == ([1], {"k": 2})


def test_signatures_are_immutable_values() -> None:
    """set() returns a new signature; the original is unchanged; bad options say why."""
    from fastworker import ConfigurationError

    base = sig("a", 1)
    high = base.set(priority="high", immutable=True)
    assert base.priority is None and not base.immutable
    assert high.priority == 1 and high.immutable and high.args == (1,)
    assert "immutable=True" in repr(high)
    with pytest.raises(ConfigurationError):
        base.set(priority="urgent")
    with pytest.raises(ConfigurationError):
        base.set(countdown="soon")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        chain()
    with pytest.raises(ConfigurationError):
        group(sig("a"), "b")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        sig(len)


def test_members_report_their_states() -> None:
    """members() lists every member with its state as the flow goes (for views)."""
    flow = Workflow("v", flatten(chain(sig("a"), group(sig("b"), sig("c")))))
    (a,) = flow.start().starts
    assert flow.members() == [
        ("v:1", "a", "active"),
        ("v:3", "b", "pending"),
        ("v:4", "c", "pending"),
    ]
    b, _ = flow.finished(a.index, "success", b"\x01").starts
    flow.finished(b.index, "failure", None, ERROR)
    assert [state for _, _, state in flow.members()] == ["success", "failed", "active"]


def test_a_member_cancelled_on_its_own_ends_the_flow_cancelled() -> None:
    """A member that ends cancelled (cancelled by id, not through the flow) decides the
    flow cancelled with that member's error; the members after it are skipped."""
    flow = Workflow("k", flatten(chain(sig("a"), sig("b"))))
    (a,) = flow.start().starts
    why = WireError("TaskCancelled", "cancelled by request")
    fx = flow.finished(a.index, "cancelled", None, why)
    assert fx.skipped == ["k:2"] and fx.done is not None
    assert (fx.done.status, fx.done.error) == ("cancelled", why)
