"""Fuzzing the wire: hypothesis-made frames and hellos against a live node.

One server node runs in a thread of its own (its own trio loop) for a whole test, with
a well-behaved client linked to it asking all the time; hypothesis examples run in the
test's thread and talk to the node over real loopback websockets (a blocking wsproto
client: a new connection per hello, one long-lived link for frames after the hello).

For every example a model (the same checks, done locally with ``actors.Codec``) says
what the node must answer, and the node must answer exactly that: a close with the
right 4000-range code and its reason for a bad hello; a Notice for every refused
frame, envelope or tell; a FAIL naming the error for every refused ask; a reply for
every good ask; and nothing else. After the run the node must still be serving (the
good client never saw a wrong answer, a timeout or a reconnect), have no peer or task
left over from the examples, have logged no error, and keep no memory per example (a
sample of the examples is replayed again under tracemalloc; see watched_server).
Each property also checks that its examples reached every outcome it is about.

The normal run makes a few hundred examples per property; the ``slow`` Hypothesis
profile (``--run-slow`` or ``HYPOTHESIS_PROFILE=slow``) makes 10,000 for each.

Regressions (the tests at the end): frames nested between about 950 and 1024 levels
pass msgpack's depth limit, and describing them in the error once hit Python's
recursion limit (a RecursionError instead of a Notice or a 4000 close; a dialling node
that met one in a server's hello crashed).
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import msgpack
import pytest
import trio
import trio_websocket
from hypothesis import (
    HealthCheck,
    currently_in_test_context,
    event,
    example,
    given,
    settings,
)
from hypothesis import strategies as st
from security_support import (
    QUICK,
    SECRET,
    TIMEOUT,
    Closed,
    MemoryWatch,
    Order,
    ServerThread,
    SyncClient,
    deep_array,
    host_port,
    make_hello,
    serving,
)
from support import examples

import actors
from actors import (
    PROTOCOL_VERSION,
    Codec,
    CodecError,
    HandshakeError,
    Hello,
    Kind,
    open_actor_system,
    registered_messages,
)
from actors._link import Notice, Proof

FAST = 300  # examples per property in a normal run (a share of it for the slower ones)
# Hypothesis settings: no deadline (a network round trip per example), no example
# database (examples are not replayed between runs: each run is a fresh sample).
BASE = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Memory the node may keep after a sample of the examples is replayed three more times
# (its caches warm by then): measured noise is under 16 KiB, so a leak of a few hundred
# bytes per example shows.
# Bounded-by-design structures may fill during the check (the dead letters keep up to
# 1000 short previews, ~450 bytes each: 120 replayed frames can add ~55 KiB); a leak of
# even 2 KiB per frame would still show (120 frames x 2 KiB = 240 KiB).
MEMORY_MARGIN = 160 * 1024
REPLAYED = 40  # examples kept for the memory check
REPLAYS = 3
# Nesting depths, many of them around msgpack's limit (1024) and Python's (1000).
DEPTHS = st.integers(1, 100_000) | st.integers(900, 1100)
# disconnect_timeout also bounds sending the close frame (trio-websocket's aclose sends
# it and waits for the reply under one timeout): long enough that a server thread
# starved of the GIL on a loaded machine still gets its close (and reason) out.
LINK: dict[str, Any] = {
    "heartbeat_timeout": 120.0,
    "handshake_timeout": 5.0,
    "disconnect_timeout": 2.0,
}

codec = Codec()


# -- strategies --------------------------------------------------------------------------------

leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.integers(-5, 5), children, max_size=5)
    ),
    max_leaves=10,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given weights (``one_of`` is not uniform)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


names = weighted(
    (3, st.just("calc")),
    (2, st.sampled_from(["nobody", "", "control-plane", "recorder"])),
    (1, st.text(max_size=12)),
)
type_names = weighted(
    (2, st.just("")),
    (3, st.sampled_from(sorted(registered_messages()))),
    (1, st.just("no.such.Type")),
    (1, st.text(max_size=20)),
)
kinds = weighted(
    (6, st.sampled_from([int(k) for k in Kind])),
    (1, st.integers(-3, 12)),
    (1, st.integers(-(2**63), 2**63 - 1)),
)
corrs = st.integers(0, 2**31) | st.integers(-(2**63), 2**62)
LENGTH_PREFIXES = [b"\xdc", b"\xdd", b"\xde", b"\xdf", b"\xc5", b"\xc6", b"\xda", b"\xdb", b"\xc9"]


@st.composite
def bodies(draw: st.DrawFn, type_name: str) -> Any:
    """A body for ``type_name``: random data, or its fields with random or right values."""
    cls = registered_messages().get(type_name)
    if cls is None or draw(st.booleans()):
        return draw(values)
    body: dict[Any, Any] = {}
    for field in attrs.fields(cls):
        if draw(st.integers(0, 4)) == 0:
            continue  # a missing field
        body[field.name] = draw(values | st.sampled_from(["x", 1, True, b"n", 1.5, None]))
    if draw(st.integers(0, 4)) == 0:
        body[draw(st.text(max_size=8))] = draw(values)  # an extra field
    return body


@st.composite
def envelopes(draw: st.DrawFn) -> list[Any]:
    """A well-shaped envelope with fuzzed kind, names, types and body."""
    type_name = draw(type_names)
    return [
        draw(kinds),
        draw(names),
        draw(st.none() | names),
        draw(corrs),
        type_name,
        draw(bodies(type_name)),
    ]


@st.composite
def mutated(draw: st.DrawFn, frame: bytes) -> bytes:
    """``frame`` with a few bytes flipped, dropped or inserted, or cut short."""
    data = bytearray(frame)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "drop", "insert", "cut"]))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "drop":
            del data[at]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            del data[at:]
    return bytes(data)


@st.composite
def huge_lengths(draw: st.DrawFn) -> bytes:
    """A small frame whose array/map/bin/str/ext header claims up to 2**32 - 1 items."""
    prefix = draw(st.sampled_from(LENGTH_PREFIXES))
    size = {b"\xdc": ">H", b"\xda": ">H", b"\xde": ">H", b"\xc5": ">H"}.get(prefix, ">I")
    count = draw(st.integers(0, 0xFFFF if size == ">H" else 0xFFFFFFFF))
    header = prefix + struct.pack(size, count) + (b"\x01" if prefix == b"\xc9" else b"")
    tail = draw(st.binary(max_size=32))
    where = draw(st.sampled_from(["frame", "envelope", "body"]))
    if where == "frame":
        return header + tail
    if where == "envelope":
        return b"\x91" + header + tail
    start = msgpack.packb([[int(Kind.ASK), "calc", None, 5, ""]])[:-1]
    return b"\x91\x96" + start[2:] + header + tail


@st.composite
def deep_frames(draw: st.DrawFn) -> bytes:
    """Nested arrays (outside the recursion band): as the frame, or as an ask's body."""
    depth = draw(DEPTHS)
    if draw(st.booleans()):
        return deep_array(depth)
    head = msgpack.packb([int(draw(st.sampled_from([Kind.TELL, Kind.ASK]))), "calc", None, 9, ""])
    return b"\x91\x96" + head[1:] + deep_array(depth)


@st.composite
def frames_after_hello(draw: st.DrawFn) -> bytes | str:
    """Every kind of frame a hostile peer could send on an established link, about half
    of them well-shaped envelopes (which reach the per-envelope checks)."""
    good = st.tuples(
        st.sampled_from([int(Kind.ASK), int(Kind.TELL)]), st.just("calc"), st.none(), corrs
    ).map(list)
    some = weighted((3, envelopes()), (1, st.tuples(good, values).map(lambda g: [*g[0], "", g[1]])))
    shaped = st.lists(some, min_size=1, max_size=3).map(msgpack.packb)
    branch = draw(
        st.sampled_from(
            ["shaped"] * 7 + ["mutated", "binary", "value", "list", "six", "huge", "deep", "text"]
        )
    )
    if branch == "shaped":
        return bytes(draw(shaped))
    if branch == "mutated":
        return draw(shaped.flatmap(mutated))
    if branch == "binary":
        return draw(st.binary(max_size=64))
    if branch == "value":
        return bytes(msgpack.packb(draw(values)))
    if branch == "list":
        return bytes(msgpack.packb(draw(st.lists(values, max_size=4))))
    if branch == "six":  # envelope-sized lists of anything
        six = st.lists(values, min_size=6, max_size=6)
        return bytes(msgpack.packb(draw(st.lists(six, min_size=1, max_size=3))))
    if branch == "huge":
        return draw(huge_lengths())
    if branch == "deep":
        return draw(deep_frames())
    return draw(st.text(max_size=20))


@st.composite
def hello_bodies(draw: st.DrawFn) -> Any:
    """A hello body: a good one, or one with another version or cluster, asking for auth
    of a secret-less node, or with up to three fields missing or of a wrong type or
    value; sometimes with an extra field."""
    body: dict[Any, Any] = {
        "node_id": "fuzz-" + draw(st.text(min_size=1, max_size=8)),
        "role": draw(st.text(max_size=8)),
        "cluster": "default",
        "version": PROTOCOL_VERSION,
        "nonce": draw(st.binary(min_size=16, max_size=16)),
        "auth": False,
    }
    wrong_values: dict[str, st.SearchStrategy[Any]] = {
        "node_id": st.text(max_size=8),
        "role": st.text(max_size=8),
        "cluster": st.sampled_from(["other", "", "DEFAULT"]) | st.text(max_size=8),
        "version": st.integers(-(2**63), 2**64 - 1).filter(lambda v: v != PROTOCOL_VERSION),
        "nonce": st.binary(max_size=64),
        "auth": st.just(True),
    }
    scenario = draw(st.sampled_from(["good", "version", "cluster", "auth", "fields"]))
    if scenario in ("version", "cluster", "auth"):
        body[scenario] = draw(wrong_values[scenario])
    elif scenario == "fields":
        for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3, unique=True)):
            change = draw(st.sampled_from(["drop", "type", "value"]))
            if change == "drop":
                del body[key]
            elif change == "type":
                body[key] = draw(values)
            else:
                body[key] = draw(wrong_values[key])
    if draw(st.integers(0, 5)) == 0:
        body[draw(st.text(max_size=8))] = draw(values)
    return body


@st.composite
def hello_frames(draw: st.DrawFn) -> bytes:
    """A hello-like frame: mostly one CONTROL "actors.Hello" envelope, fields fuzzed."""

    def mostly(good: Any, fuzzed: st.SearchStrategy[Any]) -> Any:
        return good if draw(st.integers(0, 19)) else draw(fuzzed)

    envelope = [
        mostly(int(Kind.CONTROL), kinds),
        mostly("", names),
        mostly(None, names),
        mostly(0, corrs),
        mostly("actors.Hello", type_names),
        draw(hello_bodies()),
    ]
    return bytes(msgpack.packb([envelope] * mostly(1, st.integers(0, 3))))


def first_frames() -> st.SearchStrategy[bytes | str]:
    """What a hostile client sends in place of its hello."""
    return weighted(
        (4, hello_frames()), (1, hello_frames().flatmap(mutated)), (2, frames_after_hello())
    )


# -- the model: what the node must answer -------------------------------------------------------


def structures(type_name: str, body: Any) -> Any:
    """The typed message, or the CodecError the node raises for it."""
    try:
        return codec.structure(type_name, body)
    except CodecError as exc:
        return exc


@attrs.frozen
class Expected:
    """What one frame must bring back on an established link."""

    notices: list[str]  # the start of each Notice's text, in order
    asks: dict[int, list[str]]  # corr -> per ask: "reply", "fail:<Type>" or "reply|fail"


def expected_after_hello(frame: bytes | str) -> Expected:
    """The node's answers to one frame after the hello (mirrors Link._reader)."""
    if isinstance(frame, str):
        return Expected(["frame refused: text frames are not accepted"], {})
    try:
        items = Codec.decode_frame(frame)
    except CodecError as exc:
        return Expected([f"frame refused: {exc}"], {})
    notices: list[str] = []
    asks: dict[int, list[str]] = {}
    for kind, to, _sender, corr, type_name, body in items:
        if kind in (Kind.TELL, Kind.ASK):
            typed = structures(type_name, body)
            if to != "calc":
                problem = "ActorNotFound"
            elif isinstance(typed, CodecError):
                problem = type(typed).__name__
            else:
                problem = ""
            if kind == Kind.ASK:
                asks.setdefault(corr, []).append(f"fail:{problem}" if problem else "reply|fail")
            elif problem:
                notices.append(f"message {type_name!r} to {to!r} refused: ")
        elif kind == Kind.CONTROL:
            typed = structures(type_name, body)
            if isinstance(typed, CodecError):
                notices.append(f"control message refused: {typed}")
        elif kind not in (Kind.REPLY, Kind.FAIL):
            notices.append(f"unknown envelope kind {kind!r}: message to {to!r} dropped")
    return Expected(notices, asks)


def expected_close(frame: bytes | str, server_node: str) -> tuple[int, str] | None:
    """The close code and reason for a first frame, or None if it is a good hello."""
    if isinstance(frame, str):
        return 4000, "bad handshake: text frames are not accepted: send binary msgpack frames"
    try:
        items = Codec.decode_frame(frame)
        if len(items) != 1 or items[0][0] != Kind.CONTROL:
            raise CodecError("expected one Hello control message first")
        msg = codec.structure(items[0][4], items[0][5])
        if not isinstance(msg, Hello):
            raise CodecError(f"expected Hello, got {type(msg).__name__}")
    except CodecError as exc:
        return 4000, f"bad handshake: {exc}"
    if msg.version != PROTOCOL_VERSION:
        return 4000, f"protocol version mismatch: this node speaks {PROTOCOL_VERSION}, "
    if msg.cluster != "default":
        return 4002, f"cluster mismatch: this node is in 'default', the peer in {msg.cluster!r}"
    if msg.node_id == server_node:
        return 4000, "a node cannot link to itself"
    if msg.auth:
        return 4001, "the peer requires the cluster secret: start this node with it"
    return None


def same_reason(received: str, expected: str) -> bool:
    """A close reason, cut to 120 characters and 123 UTF-8 bytes, is the expected one."""
    return bool(received) and (expected.startswith(received) or received.startswith(expected))


# -- driving the node ---------------------------------------------------------------------------


class Link:
    """An established link to the server thread's node, driven frame by frame."""

    def __init__(self, url: str) -> None:
        self.client = SyncClient(url)
        first = self.client.envelopes()
        assert first is not None and first[0][4] == "actors.Hello", first
        self.client.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, make_hello())]))
        self.sync = 2**62

    def exchange(self, frame: bytes | str) -> tuple[list[str], dict[int, list[list[Any]]]]:
        """Send ``frame`` and a sync ask; return the Notices and the answers (by corr)
        that came back before the sync ask's reply."""
        self.sync += 1
        self.client.send(frame)
        self.client.send(codec.encode_frame([(Kind.ASK, "calc", None, self.sync, self.sync)]))
        notices: list[str] = []
        answers: dict[int, list[list[Any]]] = {}
        while True:
            items = self.client.envelopes()
            assert items is not None, f"the node closed the link: {self.client.closed}"
            for kind, _to, _sender, corr, type_name, body in items:
                if kind == Kind.CONTROL and type_name == "actors.Notice":
                    notices.append(Notice(**body).text)
                elif kind == Kind.CONTROL:
                    assert type_name == "actors.Ping", (type_name, body)
                elif corr == self.sync:
                    assert (kind, body) == (Kind.REPLY, 2 * self.sync), (kind, body)
                    return notices, answers
                else:
                    answers.setdefault(corr, []).append([kind, type_name, body])


def check_answers(expected: Expected, notices: list[str], answers: dict[int, Any]) -> None:
    """The node answered exactly what the model expects."""
    assert len(notices) == len(expected.notices), (notices, expected)
    for text, start in zip(notices, expected.notices, strict=True):
        assert text.startswith(start[:200]), (text, start)
    assert set(answers) == set(expected.asks), (answers, expected)
    for corr, wanted in expected.asks.items():
        # Asks reusing a corr are answered in no particular order (a refusal goes out at
        # once, a reply when the actor gets to it): compare them as multisets.
        got = [(kind, body) for kind, _type_name, body in answers[corr]]
        assert len(got) == len(wanted), (got, wanted)
        for want in sorted(wanted, key=lambda w: w == "reply|fail"):
            if want == "reply|fail":
                match = next(
                    (a for a in got if a[0] == Kind.REPLY or "could not be encoded" in a[1][1]),
                    None,
                )
            else:
                error = want.split(":", 1)[1]
                match = next((a for a in got if a[0] == Kind.FAIL and a[1][0] == error), None)
            assert match is not None, (want, got)
            assert match[0] == Kind.REPLY or match[1][1], match  # a FAIL says why
            got.remove(match)


class Driver:
    """Runs one example against the server thread; ``close`` ends any connection it keeps."""

    def __init__(self, server: ServerThread, run: Callable[[bytes | str], Any]) -> None:
        self.server = server
        self._run = run
        self.kept: list[bytes | str] = []
        self.seen = 0
        self._random = random.Random(0)
        self.link: Link | None = None

    def run(self, frame: bytes | str) -> Any:
        """Run one example, keeping a uniform sample of them for the memory check."""
        self.seen += 1
        if len(self.kept) < REPLAYED:
            self.kept.append(frame)
        else:
            at = self._random.randrange(self.seen)
            if at < REPLAYED:
                self.kept[at] = frame
        return self._run(frame)

    def close(self) -> None:
        if self.link is not None:
            self.link.client.close()
            self.link = None


@contextmanager
def watched_server(
    make_run: Callable[[Driver], Callable[[bytes | str], Any]], **options: Any
) -> Iterator[Driver]:
    """A server thread and a Driver for it; when the block ends (without error) the node
    must be as it was: served the good client correctly throughout, logged no error,
    has no extra peer or task, and keeps no memory for replayed examples.

    The memory check replays a sample of the examples (once to warm caches, then
    REPLAYS times under tracemalloc): memory the node keeps per example shows as growth.
    """
    with ServerThread(**{**LINK, **options}) as server:
        driver = Driver(server, lambda frame: None)
        driver._run = make_run(driver)
        baseline = server.settle()
        yield driver
        driver.close()
        after = server.settle(tasks=baseline["tasks"])
        assert server.errors == [], server.errors[:3]
        assert server.log_errors.records == [], server.log_errors.records[:3]
        assert after["good_connected"] and after["good_links"] == 1, after
        server.wait_answered(baseline["answered"] + 3)  # and is still being answered
        sample = list(driver.kept)
        server.paused = True  # its own traffic would only add noise
        for frame in sample:  # warm: whatever this fills is not traced
            driver._run(frame)
        driver.close()
        server.settle(tasks=baseline["tasks"])
        with MemoryWatch() as memory:
            for frame in sample[:5]:  # objects only the latest example keeps, now traced
                driver._run(frame)
            driver.close()
            server.settle(tasks=baseline["tasks"])
            memory.mark()
            for _ in range(REPLAYS):
                for frame in sample:
                    driver._run(frame)
            driver.close()
            server.settle(tasks=baseline["tasks"])
            grown = memory.growth()
        print(f"memory kept after the replays: {grown} bytes")  # shown with pytest -s
        server.paused = False
        assert grown < MEMORY_MARGIN, (
            f"the node kept {grown} bytes after replaying {len(sample)} examples {REPLAYS} times"
        )
        assert server.errors == [], server.errors[:3]
        assert server.log_errors.records == [], server.log_errors.records[:3]


OUTCOMES: Counter[str] = Counter()


def record(outcomes: list[str]) -> None:
    """Count what an example led to, in OUTCOMES and for hypothesis's statistics."""
    if currently_in_test_context():  # not while the memory check replays examples
        for outcome in sorted(set(outcomes)):
            OUTCOMES[outcome] += 1
            event(outcome)


@contextmanager
def requiring(*outcomes: str) -> Iterator[None]:
    """Fail unless the examples of the block led to each of ``outcomes`` at least once
    (so the strategies keep reaching every branch the property is about)."""
    OUTCOMES.clear()
    yield
    counts = {o: sum(n for seen, n in OUTCOMES.items() if seen.startswith(o)) for o in outcomes}
    print(f"outcomes: {counts}")  # shown with pytest -s
    missing = [o for o, n in counts.items() if not n]
    assert not missing, f"no example led to {missing}; outcomes: {dict(OUTCOMES)}"


def on_a_link(driver: Driver) -> Callable[[bytes | str], Any]:
    """Send each frame on one established link and check the answers."""

    def run(frame: bytes | str) -> None:
        if driver.link is None:
            driver.link = Link(driver.server.url)
        notices, answers = driver.link.exchange(frame)
        expected = expected_after_hello(frame)
        check_answers(expected, notices, answers)
        record(
            [text.split(":")[0] for text in notices]
            + [want.split("|")[0] for wants in expected.asks.values() for want in wants]
            or ["no answer"]
        )

    return run


def as_the_hello(driver: Driver) -> Callable[[bytes | str], Any]:
    """Send each frame as the first frame of a new connection and check the close."""

    def run(frame: bytes | str) -> None:
        closed, server_node = hello_once(driver.server, frame)
        expected = expected_close(frame, server_node)
        if expected is None:
            assert closed is None
            record(["linked"])
            return
        assert closed is not None, (frame, expected)
        code, reason = expected
        record([f"{code} {reason.split(':')[0][:40]}"])
        assert closed.code == code, (closed, expected)
        assert same_reason(closed.reason, reason), (closed, expected)

    return run


def as_the_proof(driver: Driver) -> Callable[[bytes | str], Any]:
    """Say hello offering auth, send each frame where the proof belongs, expect 4001."""

    def run(frame: bytes | str) -> None:
        closed = proof_once(driver.server, frame)
        assert closed.code == 4001, closed
        assert closed.reason.startswith("authentication failed: "), closed

    return run


def hello_once(server: ServerThread, frame: bytes | str) -> tuple[Closed | None, str]:
    """A new connection whose first frame is ``frame``; how the node closed it (None: the
    link came up and answered an ask) and the server's node id."""
    client = SyncClient(server.url)
    try:
        first = client.envelopes()
        assert first is not None and first[0][4] == "actors.Hello", first
        server_node = first[0][5]["node_id"]
        client.send(frame)
        items = None
        if expected_close(frame, server_node) is None:
            client.send(codec.encode_frame([(Kind.ASK, "calc", None, 3, 21)]))
            while items is None or items[0][0] == Kind.CONTROL:
                items = client.envelopes()
                if items is None:
                    break
            if items is not None:
                assert items[0][0] == Kind.REPLY and items[0][5] == 42, items
                return None, server_node
        return client.wait_closed(), server_node
    finally:
        client.close()


# -- properties ---------------------------------------------------------------------------------


def frames_after_the_hello_property(default_examples: int) -> None:
    with watched_server(on_a_link) as driver:

        @settings(BASE, max_examples=examples(default_examples))
        @given(frame=frames_after_hello())
        @example(frame=b"\xc1")
        @example(frame=b"\xdd\xff\xff\xff\xff")  # an array "of 2**32 - 1 items", 5 bytes
        @example(frame=b"\x91\x96\x01\xa4calc\xc0\x05\xa0\xdd\xff\xff\xff\xff")
        @example(frame=msgpack.packb([[9, "calc", None, 0, "", 1]]))
        @example(frame=msgpack.packb([[0, "nobody", None, 0, "", 1]]))
        @example(frame=msgpack.packb([[4, "", None, 0, "actors.Notice", {"text": 5}]]))
        @example(frame=msgpack.packb([[1, "nobody", None, 5, "", 1], [1, "calc", None, 5, "", 1]]))
        @example(frame=msgpack.packb([[2, "", None, 7, "", 1]]))
        @example(  # asks reusing a corr, answered out of order
            frame=b"\x93\x96\x01\xa4calc\xc0\x00\xa0\xc0\x96\x01\xa4calc\xc0\x00\xa0\xc0"
            b"\x96\x01\xa4calc\xc0\x00\xacactors.Hello\x81\xa0\xc0"
        )
        def check(frame: bytes | str) -> None:
            driver.run(frame)

        with requiring(
            "frame refused",
            "unknown envelope kind",
            "message ",
            "control message refused",
            "fail",
            "reply",
            "no answer",
        ):
            check()


def test_every_bad_frame_after_the_hello_gets_its_answer_and_the_node_stays_up() -> None:
    """Hundreds of hostile frames on one established link (junk bytes, mutated frames,
    wrong shapes and types, unknown kinds and message types, huge declared lengths, deep
    nesting, text): each gets exactly the Notices and FAIL replies the model predicts,
    good asks in them are answered, the link stays up, and the node is left as it was."""
    frames_after_the_hello_property(FAST)



def hello_frame(**changes: Any) -> bytes:
    """A hello frame (from make_hello, with ``changes``)."""
    return bytes(codec.encode_frame([(Kind.CONTROL, "", None, 0, make_hello(**changes))]))


def hello_examples(test: Callable[..., None]) -> Callable[..., None]:
    """Explicit examples reaching every outcome of a hello: linked, 4000 (junk, version),
    4001 (auth against no secret), 4002 (cluster)."""
    for frame in (
        hello_frame(),
        b"\xc1",
        hello_frame(version=PROTOCOL_VERSION + 1),
        hello_frame(auth=True),
        hello_frame(cluster="other"),
    ):
        test = example(frame=frame)(test)
    return test


def hello_property(default_examples: int) -> None:
    with watched_server(as_the_hello) as driver:

        @settings(BASE, max_examples=examples(default_examples))
        @given(frame=first_frames())
        @hello_examples
        def check(frame: bytes | str) -> None:
            driver.run(frame)

        with requiring(
            "linked",
            "4000 bad handshake",
            "4000 protocol version mismatch",
            "4001 the peer requires the cluster secret",
            "4002 cluster mismatch",
        ):
            check()


def test_every_bad_hello_is_closed_with_its_code_and_reason() -> None:
    """Hundreds of hostile first frames (hello bodies with missing, extra or wrong-typed
    fields, other versions and clusters, auth against a secret-less node, other kinds,
    several envelopes, junk): each connection is closed with the exact 4000/4001/4002
    code and reason the model predicts, or links and answers when it is a good hello."""
    hello_property(FAST * 2 // 3)



def proof_once(server: ServerThread, frame: bytes | str) -> Closed:
    """Say hello offering auth, then send ``frame`` where the proof belongs."""
    client = SyncClient(server.url)
    try:
        client.envelopes()  # the server's hello
        hello = make_hello(auth=True)
        client.send(codec.encode_frame([(Kind.CONTROL, "", None, 0, hello)]))
        client.send(frame)
        return client.wait_closed()
    finally:
        client.close()


def proof_property(default_examples: int) -> None:
    with watched_server(as_the_proof, secret=SECRET) as driver:

        @settings(BASE, max_examples=examples(default_examples))
        @given(frame=first_frames() | st.binary(min_size=32, max_size=32).map(proof_frame))
        def check(frame: bytes | str) -> None:
            driver.run(frame)

        check()


def proof_frame(mac: bytes) -> bytes:
    """A well-formed proof frame with the given (wrong) mac."""
    return codec.encode_frame([(Kind.CONTROL, "", None, 0, Proof(mac))])


def test_anything_but_the_right_proof_is_closed_with_4001() -> None:
    """With a secret, whatever a client sends in place of its proof (random macs, junk,
    other messages) closes it with 4001 "authentication failed: ..."."""
    proof_property(FAST // 3)



def client_side_property(default_examples: int) -> None:
    """A hostile server answers a connecting node's hello with a fuzzed frame."""
    with ServerThread(**LINK) as server:
        state: dict[str, Any] = {"frame": b""}

        async def hostile(request: trio_websocket.WebSocketRequest) -> None:
            ws = await request.accept()
            try:
                await ws.send_message(state["frame"])
                while True:
                    await ws.get_message()
            except trio_websocket.ConnectionClosed:
                pass

        async def start() -> tuple[str, actors.ActorSystem]:
            system_nursery = state["nursery"]
            listener = await system_nursery.start(
                trio_websocket.serve_websocket, hostile, "127.0.0.1", 0, None
            )
            client = await system_nursery.start(run_client_system)
            return f"ws://127.0.0.1:{listener.port}", client

        async def run_client_system(*, task_status: trio.TaskStatus[Any]) -> None:
            async with open_actor_system(link=QUICK, role="victim") as client:
                task_status.started(client)
                await trio.sleep_forever()

        assert server.system is not None
        state["nursery"] = server.system.nursery
        url, client = server.acall(start)

        @settings(BASE, max_examples=examples(default_examples))
        @given(frame=first_frames())
        @hello_examples
        def check(frame: bytes | str) -> None:
            state["frame"] = frame

            async def connect() -> BaseException | None:
                with trio.fail_after(TIMEOUT):
                    try:
                        await client.connect(url, reconnect=False)
                    except HandshakeError as exc:
                        return exc
                return None

            error = server.acall(connect)
            expected = expected_close(frame, "no-such-node")
            if expected is None:
                assert error is None
                record(["linked"])
            else:
                # The dialling node runs the same checks on the server's hello.
                assert isinstance(error, HandshakeError), error
                assert error.code == expected[0], (error, expected)
                assert same_reason(str(error), expected[1]), (error, expected)
                record([f"{expected[0]}"])

        with requiring("linked", "4000", "4001", "4002"):
            check()
        assert server.errors == []
        assert server.log_errors.records == [], server.log_errors.records[:3]


def test_a_node_connecting_to_a_hostile_server_gets_a_handshake_error_not_a_crash() -> None:
    """A node dialling a server that answers with any fuzzed frame in place of the hello
    gets HandshakeError with a reason from connect(); its actor system keeps running."""
    client_side_property(FAST // 6)



# -- targeted cases --------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100_000, 1025, 850, 10])
def test_deeply_nested_frames_are_refused_with_a_reason(depth: int) -> None:
    """100,000 nested arrays (100 KB) are refused by msgpack's depth limit (1024) with a
    Notice (after the hello) or a 4000 close (as the hello); shallower nesting within
    the limit is an ordinary malformed frame or, as an ask's body, echoed or refused."""
    ask = b"\x91\x96" + b"\x01\xa4calc\xc0\x07\xa0" + deep_array(depth)
    with watched_server(on_a_link) as driver:
        driver.run(deep_array(depth))
        driver.run(ask)
    with watched_server(as_the_hello) as driver:
        driver.run(deep_array(depth))


async def test_a_replayed_hello_and_proof_fail_because_the_nonce_differs() -> None:
    """The bytes a real node sent to log in (HTTP upgrade, hello, proof), captured off the
    wire by a proxy and replayed on new connections, are refused with 4001: the server
    picks a new nonce each time, so the recorded proof no longer matches."""
    async with serving(secret=SECRET) as server:
        host, port = host_port(server.url)
        recordings: list[bytes] = []

        async def proxy(client_stream: trio.SocketStream) -> None:
            upstream = await trio.open_tcp_stream(host, port)
            recorded = bytearray()
            recordings.append(b"")
            index = len(recordings) - 1

            async def pump(src: trio.abc.Stream, dst: trio.abc.Stream, record: bool) -> None:
                try:
                    async for data in src:
                        if record:
                            recorded.extend(data)
                            recordings[index] = bytes(recorded)
                        await dst.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                finally:
                    await trio.aclose_forcefully(dst)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client_stream, upstream, True)
                nursery.start_soon(pump, upstream, client_stream, False)

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, proxy, 0)
            proxy_port = listeners[0].socket.getsockname()[1]
            for _ in range(3):
                async with open_actor_system(secret=SECRET, link=QUICK) as real:
                    with trio.fail_after(TIMEOUT):
                        peer = await real.connect(f"ws://127.0.0.1:{proxy_port}")
                        assert await peer.ref("calc").ask(Order("login", 1)) == Order("login", 2)
            nursery.cancel_scope.cancel()

        async def replay(recording: bytes) -> tuple[int, str]:
            # As the real client did: the upgrade request, then (after the 101) the hello
            # and proof frames (what came after them, up to its close, is left out).
            cut = recording.index(b"\r\n\r\n") + 4
            end = after_frames(recording, cut, 2)
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(recording[:cut])
            received = bytearray()
            with trio.fail_after(TIMEOUT):
                while b"\r\n\r\n" not in received:
                    data = await stream.receive_some(65536)
                    assert data, bytes(received)
                    received.extend(data)
                await stream.send_all(recording[cut:end])
                while (close := server_close(bytes(received))) is None:
                    data = await stream.receive_some(65536)
                    assert data, bytes(received)
                    received.extend(data)
            await stream.aclose()
            return close

        assert len(recordings) == 3 and all(recordings)
        for recording in recordings:
            for _ in range(2):
                code, reason = await replay(recording)
                assert code == 4001, (code, reason)
                assert reason == "authentication failed: the peer does not know the cluster secret"
        await server.check_good_client()
        assert server.received == []


def frame_end(data: bytes, at: int) -> int:
    """Where the websocket frame starting at ``at`` ends (masked or not)."""
    masked, length = data[at + 1] & 0x80, data[at + 1] & 0x7F
    at += 2
    if length == 126:
        length = struct.unpack(">H", data[at : at + 2])[0]
        at += 2
    elif length == 127:
        length = struct.unpack(">Q", data[at : at + 8])[0]
        at += 8
    return at + (4 if masked else 0) + length


def after_frames(data: bytes, at: int, count: int) -> int:
    """The offset just after ``count`` websocket frames starting at ``at``."""
    for _ in range(count):
        at = frame_end(data, at)
    assert at <= len(data), "the recording is cut short"
    return at


def server_close(data: bytes) -> tuple[int, str] | None:
    """The close code and reason in a server's HTTP response and frames, once complete."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    assert data.startswith(b"HTTP/1.1 101"), data[:100]
    at = head_end + 4
    while at + 2 <= len(data):
        try:
            end = frame_end(data, at)
        except struct.error:
            return None  # the extended length is not all here yet
        if end > len(data):
            return None
        if data[at] & 0x0F == 0x8:
            payload = data[end - (data[at + 1] & 0x7F) : end] if data[at + 1] & 0x7F < 126 else b""
            return struct.unpack(">H", payload[:2])[0], payload[2:].decode()
        at = end
    return None


# -- regressions: nesting just under msgpack's limit -------------------------------------------


@pytest.mark.parametrize("depth", [1000, 1020])
def test_a_frame_nested_just_under_the_msgpack_limit_gets_a_reason(depth: int) -> None:
    """A frame nested 1000-1020 deep is refused like any malformed frame: a Notice after
    the hello (the link stays up) and a 4000 close with a reason as the hello."""
    with ServerThread(**LINK) as server:
        closed, _ = hello_once(server, deep_array(depth))
        assert closed is not None and closed.code == 4000, closed
        link = Link(server.url)
        notices, _answers = link.exchange(deep_array(depth))
        assert notices and notices[0].startswith("frame refused")


async def test_a_node_survives_a_server_whose_hello_is_nested_just_under_the_limit() -> None:
    """A node dialling a server that says hello with a frame nested 1000 deep gets a
    HandshakeError, not a RecursionError (which, on a reconnect, would end the node)."""

    async def hostile(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(deep_array(1000))
        with trio.move_on_after(1):
            await ws.get_message()

    async with trio.open_nursery() as nursery:
        listener = await nursery.start(
            trio_websocket.serve_websocket, hostile, "127.0.0.1", 0, None
        )
        async with open_actor_system(link=QUICK) as client:
            with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError):
                await client.connect(f"ws://127.0.0.1:{listener.port}", reconnect=False)
        nursery.cancel_scope.cancel()
