"""Message types and the wire codec: msgpack frames of envelopes, bodies typed by cattrs.

A frame is a msgpack array of envelopes; an envelope is the array
``[kind, to, sender, corr, type, body]``. Decoding is two-layer: the frame and the
envelopes are decoded first (cheap, no schema), then each body is structured against
its declared message type on its own, so a bad body fails that one message and never
the link.
"""

from __future__ import annotations

import enum
import reprlib
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import cattrs
import msgpack
from cattrs.preconf.msgpack import make_converter

from ._errors import BodyError, CodecError, UnknownMessageType
from ._schema import Compiler, SchemaError

T = TypeVar("T")

PLAIN = ""
"""The type tag of a body that is plain msgpack data rather than a registered message."""


class Kind(enum.IntEnum):
    """What an envelope is for."""

    TELL = 0
    ASK = 1
    REPLY = 2
    FAIL = 3
    CONTROL = 4


_BY_NAME: dict[str, type] = {}
_BY_TYPE: dict[type, str] = {}


def message(name: str) -> Callable[[type[T]], type[T]]:
    """Register an attrs class as a message type under the discriminator ``name``.

    Use on frozen slotted attrs classes (``@attrs.frozen``)::

        @actors.message("shop.Order")
        @attrs.frozen
        class Order:
            item: str
            quantity: int

    The name travels on the wire; keep it stable across versions.
    """

    def register(cls: type[T]) -> type[T]:
        if not attrs.has(cls):
            raise TypeError(f"@message({name!r}) needs an attrs class, got {cls!r}")
        existing = _BY_NAME.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"message name {name!r} is already used by {existing.__qualname__}")
        _BY_NAME[name] = cls
        _BY_TYPE[cls] = name
        return cls  # type: ignore[return-value]

    return register


def message_name(cls: type) -> str | None:
    """The discriminator a class was registered under, or None."""
    return _BY_TYPE.get(cls)


def registered_messages() -> dict[str, type]:
    """Every registered message type, by discriminator (a copy)."""
    return dict(_BY_NAME)


def _strict(expected: type | tuple[type, ...], label: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _type: Any) -> Any:
        # bool is an int subclass; a bool where a number is declared is a type error.
        if isinstance(value, expected) and not (isinstance(value, bool) and label != "bool"):
            return value
        raise TypeError(f"expected {label}, got {type(value).__name__}")

    return structure


def make_message_converter() -> cattrs.Converter:
    """A msgpack converter that refuses coercions ('5' is not an int, 5 is not a str)."""
    converter = make_converter()
    # Registered first: hooks are captured when a class's hook is first generated.
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(str, _strict(str, "str"))
    converter.register_structure_hook(bool, _strict(bool, "bool"))
    converter.register_structure_hook(bytes, _strict(bytes, "bytes"))
    converter.register_structure_hook(float, _float)
    return converter


def _float(value: Any, _type: Any) -> float:
    if isinstance(value, float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected float, got {type(value).__name__}")


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


class Codec:
    """Encodes envelopes to msgpack and decodes frames back, typing bodies with cattrs.

    Hooks are fetched once per message type and cached: the hot path is one dict
    lookup plus the generated cattrs function.
    """

    def __init__(self, converter: cattrs.Converter | None = None) -> None:
        self.converter = converter or make_message_converter()
        self._compiler = Compiler(self.converter, lambda cls: cls in _BY_TYPE)
        self._structure: dict[str, tuple[type, Callable[[Any], Any]]] = {}
        self._unstructure: dict[type, tuple[str, Callable[[Any], Any]]] = {}
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True)

    # -- bodies ---------------------------------------------------------------
    def unstructure(self, msg: Any) -> tuple[str, Any]:
        """Split a message into its type tag and plain body.

        Raises:
            CodecError: an attrs class that is not a registered ``@message``.
        """
        cls = type(msg)
        cached = self._unstructure.get(cls)
        if cached is None:
            name = _BY_TYPE.get(cls)
            if name is None:
                if attrs.has(cls):
                    raise CodecError(
                        f"{cls.__qualname__} is not a registered message: decorate it with "
                        f"@actors.message('some.Name') to send it to another node"
                    )
                return PLAIN, msg
            cached = (name, self._compiler.unstructure_fn(cls))
            self._unstructure[cls] = cached
        name, hook = cached
        return name, hook(msg)

    def structure(self, type_name: str, body: Any) -> Any:
        """Type a body against its declared message type.

        Raises:
            UnknownMessageType: the tag names no registered message type.
            BodyError: the body does not fit the type (the message names type and field).
        """
        if type_name == PLAIN:
            return body
        cached = self._structure.get(type_name)
        if cached is None:
            cls = _BY_NAME.get(type_name)
            if cls is None:
                raise UnknownMessageType(
                    f"unknown message type {type_name!r}: the sender and this node do not "
                    f"share a message registry (different versions?)"
                )
            cached = (cls, self._compiler.structure_fn(cls))
            self._structure[type_name] = cached
        hook = cached[1]
        try:
            return hook(body)
        except SchemaError as exc:
            raise BodyError(f"bad body for message type {type_name!r}: {exc}") from None
        except Exception as exc:
            raise BodyError(f"bad body for message type {type_name!r}: {_describe(exc)}") from None

    # -- envelopes and frames ---------------------------------------------------
    def pack_envelope(self, kind: int, to: str, sender: str | None, corr: int, msg: Any) -> bytes:
        """Encode one envelope to msgpack bytes (ready to be joined into a frame).

        Raises:
            CodecError: the message is not registered, or not msgpack data.
        """
        type_name, body = self.unstructure(msg)
        try:
            return self._packer.pack([kind, to, sender, corr, type_name, body])
        except (TypeError, ValueError, OverflowError) as exc:
            raise CodecError(f"cannot encode {type(msg).__qualname__} as msgpack: {exc}") from None

    @staticmethod
    def join_frame(packed_envelopes: list[bytes]) -> bytes:
        """Join packed envelopes into one frame (a msgpack array) without re-encoding."""
        return _array_header(len(packed_envelopes)) + b"".join(packed_envelopes)

    def encode_frame(self, envelopes: list[tuple[int, str, str | None, int, Any]]) -> bytes:
        """Encode a list of ``(kind, to, sender, corr, message)`` as one frame."""
        return self.join_frame([self.pack_envelope(*env) for env in envelopes])

    @staticmethod
    def decode_frame(frame: bytes) -> list[list[Any]]:
        """First layer: a frame to a list of raw envelopes ``[kind, to, sender, corr, type, body]``.

        Bodies are left untyped.

        Raises:
            CodecError: the frame is not a msgpack array of well-shaped envelopes.
        """
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise CodecError("text frames are not accepted: send binary msgpack frames")
        try:
            items = msgpack.unpackb(frame, raw=False, use_list=True, strict_map_key=False)
        except Exception as exc:
            # msgpack's StackError (nesting past its limit) has no message of its own.
            detail = str(exc) or f"{type(exc).__name__}: nested too deep"
            raise CodecError(f"frame is not valid msgpack: {detail}") from None
        if not isinstance(items, list):
            raise CodecError(
                f"frame must be a msgpack array of envelopes, got {type(items).__name__}"
            )
        for env in items:
            if not (
                isinstance(env, list)
                and len(env) == 6
                and type(env[0]) is int
                and isinstance(env[1], str)
                and (env[2] is None or isinstance(env[2], str))
                and type(env[3]) is int
                and isinstance(env[4], str)
            ):
                raise CodecError(
                    "malformed envelope: expected [kind:int, to:str, sender:str|nil, "
                    f"corr:int, type:str, body], got {_preview(env)}"
                )
        return items


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return f"{type(exc).__name__}: {exc}"


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 6
_REPR.maxstring = _REPR.maxother = 60


def preview(value: Any, limit: int = 80) -> str:
    """A short repr that is safe on huge or deeply nested values (no recursion, no copy)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_preview = preview
