"""Tests of the wire codec: message registration, typed bodies, frames, and refusals.

Round trips are property-based: every registered message type (the runtime's own
control messages, anything another module registered, and the test types below) is
generated with ``hypothesis.strategies.from_type`` and must survive encode/decode.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import examples

import actors
from actors import BodyError, Codec, CodecError, Kind, UnknownMessageType

MSGPACK_INT_MIN = -(2**63)
MSGPACK_INT_MAX = 2**64 - 1


@actors.message("test.codec.Scalars")
@attrs.frozen
class Scalars:
    """One field of each scalar type the codec must carry."""

    count: int
    name: str
    blob: bytes
    ratio: float
    flag: bool


@actors.message("test.codec.Collections")
@attrs.frozen
class Collections:
    """Container fields, with and without defaults."""

    numbers: list[int]
    scores: dict[str, int]
    labels: list[str] = attrs.Factory(list)


@actors.message("test.codec.Optionals")
@attrs.frozen
class Optionals:
    """Optional fields, which may travel as nil."""

    maybe_int: int | None
    maybe_text: str | None = None
    maybe_blob: bytes | None = None
    maybe_ratio: float | None = None


@actors.message("test.codec.Empty")
@attrs.frozen
class Empty:
    """A message with no fields at all."""


@actors.message("test.codec.Nested")
@attrs.frozen
class Nested:
    """A message carrying other messages."""

    head: Scalars
    items: list[Optionals]
    tail: Empty | None = None


@attrs.frozen
class Unregistered:
    """An attrs class nobody registered: it must not silently travel as something else."""

    value: int


OUR_TYPES = [Scalars, Collections, Optionals, Empty, Nested]


def _walk(value: Any) -> list[Any]:
    """Every leaf value inside a message (through attrs fields, lists and dicts)."""
    if attrs.has(type(value)):
        return [leaf for f in attrs.fields(type(value)) for leaf in _walk(getattr(value, f.name))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _walk(item)]
    if isinstance(value, dict):
        return [leaf for pair in value.items() for item in pair for leaf in _walk(item)]
    return [value]


def _fits_msgpack(message: Any) -> bool:
    """False if an int in the message is out of msgpack's 64-bit range."""
    return all(
        MSGPACK_INT_MIN <= leaf <= MSGPACK_INT_MAX
        for leaf in _walk(message)
        if isinstance(leaf, int) and not isinstance(leaf, bool)
    )


def _has_nan(message: Any) -> bool:
    """True if the message holds a NaN (which never compares equal to itself)."""
    return any(isinstance(leaf, float) and math.isnan(leaf) for leaf in _walk(message))


# -- registration ------------------------------------------------------------------------


def test_our_types_and_the_control_messages_are_registered() -> None:
    """``registered_messages`` lists the link's control messages and our test types."""
    registry = actors.registered_messages()
    for name in ("actors.Hello", "actors.Proof", "actors.Ping", "actors.Notice"):
        assert name in registry
    for cls in OUR_TYPES:
        name = actors.message_name(cls)
        assert name is not None and registry[name] is cls
    assert actors.message_name(Unregistered) is None
    registry.clear()  # a copy: the real registry is untouched
    assert actors.registered_messages()


def test_registration_refuses_non_attrs_classes_and_reused_names() -> None:
    """``@message`` needs an attrs class, and a name cannot be taken by a second class."""
    with pytest.raises(TypeError, match="attrs"):
        actors.message("test.codec.Plain")(type("Plain", (), {}))

    @attrs.frozen
    class Impostor:
        count: int

    with pytest.raises(ValueError, match="already used"):
        actors.message("test.codec.Scalars")(Impostor)
    assert actors.registered_messages()["test.codec.Scalars"] is Scalars
    # Registering the same class again under its own name is harmless.
    assert actors.message("test.codec.Scalars")(Scalars) is Scalars


# -- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", sorted(actors.registered_messages()))
# 60 per type in every profile: one test per registered type already multiplies it.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_registered_message_round_trips(type_name: str, data: st.DataObject) -> None:
    """Any instance of any registered type survives unstructure/structure and a whole frame.

    Messages whose ints do not fit msgpack's 64 bits must be refused with CodecError
    (and only those).
    """
    cls = actors.registered_messages()[type_name]
    original = data.draw(st.from_type(cls))
    codec = Codec()
    envelope = (Kind.TELL, "someone", "sender", 7, original)
    if not _fits_msgpack(original):
        with pytest.raises(CodecError):
            codec.encode_frame([envelope])
        return
    frame = codec.encode_frame([envelope])
    [raw] = codec.decode_frame(frame)
    assert raw[:5] == [Kind.TELL, "someone", "sender", 7, type_name]
    decoded = codec.structure(raw[4], raw[5])
    assert type(decoded) is cls
    # Byte-for-byte the same on the way back out (this also covers NaN and -0.0) ...
    assert codec.encode_frame([(Kind.TELL, "someone", "sender", 7, decoded)]) == frame
    # ... and equal as a value wherever equality is meaningful.
    if not _has_nan(original):
        assert decoded == original


def test_the_round_trip_covers_our_types() -> None:
    """The parametrised round trip above really includes the test message types."""
    names = {actors.message_name(cls) for cls in OUR_TYPES}
    assert names <= set(actors.registered_messages())


PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(MSGPACK_INT_MIN, MSGPACK_INT_MAX)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(body=PLAIN)
def test_plain_msgpack_data_round_trips_untyped(body: Any) -> None:
    """Plain data (not a registered type) travels with the empty type tag and comes back equal."""
    codec = Codec()
    [raw] = codec.decode_frame(codec.encode_frame([(Kind.ASK, "to", None, 1, body)]))
    assert raw[4] == ""
    assert codec.structure(raw[4], raw[5]) == body


def test_frame_with_many_envelopes_of_every_kind_round_trips() -> None:
    """A frame keeps envelope order, kinds, addresses and correlation ids."""
    codec = Codec()
    messages = [
        Scalars(count=1, name="n", blob=b"\x00\xff", ratio=0.5, flag=True),
        Collections(numbers=[1, -2], scores={"a": 3}),
        Optionals(maybe_int=None, maybe_text="t"),
        Empty(),
        {"plain": [1, 2, 3]},
        "text",
    ]
    envelopes = [
        (kind, f"to-{i}", None if i % 2 else f"from-{i}", i, msg)
        for i, (kind, msg) in enumerate(zip([*Kind, Kind.TELL], messages, strict=True))
    ]
    raw = codec.decode_frame(codec.encode_frame(envelopes))
    assert len(raw) == len(envelopes)
    for (kind, to, sender, corr, msg), got in zip(envelopes, raw, strict=True):
        assert got[:4] == [kind, to, sender, corr]
        assert codec.structure(got[4], got[5]) == msg


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_join_frame_array_header_for_every_size_class(count: int) -> None:
    """``join_frame`` writes a valid array header for fixarray, array16 and array32 sizes."""
    codec = Codec()
    packed = codec.pack_envelope(Kind.TELL, "a", None, 0, 1)
    raw = codec.decode_frame(Codec.join_frame([packed] * count))
    assert len(raw) == count
    assert all(env == [Kind.TELL, "a", None, 0, "", 1] for env in raw[:3])


# -- bodies that do not fit ----------------------------------------------------------------


def test_structure_of_an_unknown_type_raises_naming_it() -> None:
    """An unregistered type tag raises UnknownMessageType with the tag in the text."""
    with pytest.raises(UnknownMessageType, match=r"'no\.such\.Type'"):
        Codec().structure("no.such.Type", {"a": 1})


def test_unknown_message_type_is_a_codec_error() -> None:
    """UnknownMessageType and BodyError are CodecErrors (and so ActorErrors)."""
    assert issubclass(UnknownMessageType, CodecError)
    assert issubclass(BodyError, CodecError)
    assert issubclass(CodecError, actors.ActorError)


GOOD_SCALARS = {"count": 1, "name": "n", "blob": b"b", "ratio": 1.0, "flag": False}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("count", "5", "int"),
        ("count", 5.0, "int"),
        ("count", True, "int"),
        ("name", 5, "str"),
        ("name", b"n", "str"),
        ("blob", "b", "bytes"),
        ("ratio", "1.0", "float"),
        ("flag", 1, "bool"),
    ],
)
def test_a_wrong_field_type_raises_body_error_naming_type_and_field(
    field: str, value: Any, expected: str
) -> None:
    """A field of the wrong type is refused, not coerced; the error names type and field."""
    body = {**GOOD_SCALARS, field: value}
    with pytest.raises(BodyError) as info:
        Codec().structure("test.codec.Scalars", body)
    text = str(info.value)
    assert "test.codec.Scalars" in text
    assert f"$.{field}" in text
    assert expected in text


def test_the_string_five_is_not_coerced_to_an_int() -> None:
    """'5' where an int is declared is an error, while 5 is accepted as is."""
    codec = Codec()
    assert codec.structure("test.codec.Scalars", {**GOOD_SCALARS, "count": 5}).count == 5
    with pytest.raises(BodyError, match=r"expected int @ \$\.count"):
        codec.structure("test.codec.Scalars", {**GOOD_SCALARS, "count": "5"})


def test_an_int_is_accepted_where_a_float_is_declared() -> None:
    """An integral float travels as a msgpack int from some senders; it is widened, not refused."""
    decoded = Codec().structure("test.codec.Scalars", {**GOOD_SCALARS, "ratio": 3})
    assert decoded.ratio == 3.0 and isinstance(decoded.ratio, float)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"numbers": [1, "2"], "scores": {}}, "$.numbers[1]"),
        ({"numbers": [], "scores": {"a": "1"}}, "$.scores['a']"),
        ({"numbers": []}, "$.scores"),
    ],
)
def test_body_error_points_inside_containers(body: dict[str, Any], where: str) -> None:
    """BodyError says which list item, dict value or missing field was wrong."""
    with pytest.raises(BodyError) as info:
        Codec().structure("test.codec.Collections", body)
    assert where in str(info.value)
    assert "test.codec.Collections" in str(info.value)


@pytest.mark.parametrize("body", [None, 5, "text", [1, 2], b"bytes"])
def test_a_body_that_is_not_a_map_raises_body_error(body: Any) -> None:
    """A body of the wrong shape altogether is a BodyError, never some other exception."""
    with pytest.raises(BodyError, match=r"test\.codec\.Scalars"):
        Codec().structure("test.codec.Scalars", body)


# -- frames that do not decode ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        pytest.param(b"\xc1\xc1\xc1", "not valid msgpack", id="garbage-bytes"),
        pytest.param(b"", "not valid msgpack", id="empty"),
        pytest.param("[]", "text frames", id="text-str"),
        pytest.param(b"\x93\x01", "not valid msgpack", id="truncated-array"),
        pytest.param(b"\x90\x90", "not valid msgpack", id="extra-data"),
        pytest.param(msgpack.packb({"to": "x"}), "must be a msgpack array", id="map"),
        pytest.param(msgpack.packb(5), "must be a msgpack array", id="int"),
        pytest.param(msgpack.packb([[0, "to", None, 0, ""]]), "malformed envelope", id="short"),
        pytest.param(msgpack.packb([["0", "to", None, 0, "", 1]]), "malformed envelope", id="kind"),
        pytest.param(msgpack.packb([[0, 1, None, 0, "", 1]]), "malformed envelope", id="to"),
        pytest.param(msgpack.packb([[0, "to", 1, 0, "", 1]]), "malformed envelope", id="sender"),
        pytest.param(msgpack.packb([[0, "to", None, "0", "", 1]]), "malformed envelope", id="corr"),
        pytest.param(msgpack.packb([[0, "to", None, 0, 5, 1]]), "malformed envelope", id="type"),
        pytest.param(msgpack.packb([[True, "to", None, 0, "", 1]]), "malformed", id="bool-kind"),
        pytest.param(msgpack.packb(["not an envelope"]), "malformed envelope", id="not-a-list"),
    ],
)
def test_decode_frame_refuses_bad_frames_with_codec_error(frame: Any, match: str) -> None:
    """Anything but a msgpack array of well-shaped envelopes is a CodecError with a reason."""
    with pytest.raises(CodecError, match=match):
        Codec.decode_frame(frame)


def test_decode_frame_accepts_bytearray_and_memoryview() -> None:
    """Binary frames may come as any bytes-like object."""
    frame = Codec().encode_frame([(Kind.TELL, "a", None, 0, 1)])
    for view in (bytearray(frame), memoryview(frame)):
        assert Codec.decode_frame(view) == [[Kind.TELL, "a", None, 0, "", 1]]


@settings(max_examples=examples(500), deadline=None)
@given(frame=st.binary(max_size=256) | st.binary(max_size=64).map(lambda b: b"\x91\x96" + b))
def test_arbitrary_bytes_raise_only_codec_error(frame: bytes) -> None:
    """Whatever the bytes, ``decode_frame`` returns well-shaped envelopes or raises CodecError."""
    try:
        envelopes = Codec.decode_frame(frame)
    except CodecError:
        return
    assert isinstance(envelopes, list)
    for env in envelopes:
        assert isinstance(env, list) and len(env) == 6
        assert type(env[0]) is int and type(env[3]) is int
        assert isinstance(env[1], str) and isinstance(env[4], str)


@settings(max_examples=examples(200), deadline=None)
@given(body=PLAIN, type_name=st.sampled_from(sorted(actors.registered_messages())))
def test_arbitrary_bodies_raise_only_codec_errors(body: Any, type_name: str) -> None:
    """Structuring any plain body against any registered type returns it or raises BodyError."""
    try:
        decoded = Codec().structure(type_name, body)
    except BodyError:
        return
    assert type(decoded) is actors.registered_messages()[type_name]


# -- things that cannot be sent --------------------------------------------------------------


def test_an_unregistered_attrs_class_cannot_be_packed() -> None:
    """Packing an attrs instance of an unregistered class asks you to decorate it."""
    with pytest.raises(
        CodecError, match=r"Unregistered is not a registered message.*@actors\.message"
    ):
        Codec().pack_envelope(Kind.TELL, "to", None, 0, Unregistered(1))


@pytest.mark.parametrize(
    "body", [object(), {1, 2}, 2**64, -(2**63) - 1, {"nested": [object()]}], ids=repr
)
def test_unencodable_plain_data_raises_codec_error(body: Any) -> None:
    """Plain data msgpack cannot carry is a CodecError naming the type, not a TypeError."""
    with pytest.raises(CodecError, match="cannot encode"):
        Codec().pack_envelope(Kind.TELL, "to", None, 0, body)


def test_a_failed_pack_does_not_corrupt_the_next_one() -> None:
    """After a refused message the codec's packer still produces correct frames."""
    codec = Codec()
    with pytest.raises(CodecError):
        codec.pack_envelope(Kind.TELL, "to", None, 0, [1, object()])
    frame = codec.encode_frame([(Kind.TELL, "to", None, 0, [1, 2])])
    assert codec.decode_frame(frame) == [[Kind.TELL, "to", None, 0, "", [1, 2]]]
