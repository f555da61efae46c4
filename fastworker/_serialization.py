"""Task arguments and results on the wire: msgpack data only, never pickle.

Arguments are packed once by the client into opaque bytes; the control plane routes
those bytes without looking inside, and only the executor unpacks them.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ._errors import NotSerializable, PayloadTooLarge

DEFAULT_MAX_PAYLOAD = 1024 * 1024
"""Default limit for packed arguments or a packed result (1 MiB)."""

_packer = msgpack.Packer(use_bin_type=True, autoreset=True, datetime=False)


def _describe_bad(value: Any, path: str = "") -> str:
    """Find the first value msgpack cannot take, for the error message."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return ""
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _describe_bad(item, f"{path}[{index}]")
            if found:
                return found
        return ""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | bytes | bool | float) and key is not None:
                return f"{path} has a key of type {type(key).__name__}"
            found = _describe_bad(item, f"{path}[{key!r}]")
            if found:
                return found
        return ""
    return f"{path or 'the value'} is a {type(value).__qualname__}"


def pack(value: Any, *, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Pack msgpack data; NotSerializable or PayloadTooLarge with a message that says why."""
    try:
        data = _packer.pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        where = _describe_bad(value) or str(exc)
        raise NotSerializable(
            f"{what} must be msgpack data (None, bool, int, float, str, bytes, list, dict): "
            f"{where}; convert it first (e.g. to a dict or a str)"
        ) from None
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{what} are {len(data)} bytes packed, over the {limit}-byte limit: pass a reference "
            "(a path, a URL, a database key) instead of the data"
        )
    return data


def pack_arguments(
    args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any], *, limit: int = DEFAULT_MAX_PAYLOAD
) -> bytes:
    """Pack ``(args, kwargs)`` for a submission."""
    if kwargs and not all(isinstance(k, str) for k in kwargs):
        raise NotSerializable("keyword argument names must be strings")
    return pack([list(args), kwargs], what="task arguments", limit=limit)


def unpack_arguments(payload: bytes) -> tuple[list[Any], dict[str, Any]]:
    """Unpack what pack_arguments made; ValueError if it is not ``[list, dict]``."""
    value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], list)
        or not isinstance(value[1], dict)
    ):
        raise ValueError("task arguments must be packed as [args, kwargs]")
    return value[0], value[1]


def pack_result(value: Any, *, limit: int = DEFAULT_MAX_PAYLOAD) -> bytes:
    """Pack a task's return value."""
    return pack(value, what="the task's result", limit=limit)


def unpack(data: bytes | None) -> Any:
    """Unpack a result value (None stays None)."""
    if data is None:
        return None
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
