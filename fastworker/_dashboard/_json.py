"""The JSON form of task arguments and results over HTTP.

msgpack data maps to JSON one to one, except ``bytes``: a bytes value is the object
``{"$bytes": "<base64>"}`` both ways (standard base64 with padding). Map keys that are
not strings become strings (JSON allows no other keys).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

BYTES_KEY = "$bytes"


def to_json(value: Any) -> Any:
    """msgpack data (unpacked) as JSON-ready data."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_KEY: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {_key(k): to_json(v) for k, v in value.items()}
    return value


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return base64.b64encode(key).decode("ascii")
    if key is None or isinstance(key, bool):
        return "null" if key is None else ("true" if key else "false")
    return str(key)


def from_json(value: Any) -> Any:
    """JSON data as msgpack data: ``{"$bytes": ...}`` objects become bytes.

    Raises:
        ValueError: a ``$bytes`` object whose value is not base64 text.
    """
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and BYTES_KEY in value:
            text = value[BYTES_KEY]
            if not isinstance(text, str):
                raise ValueError('a {"$bytes": ...} value must be a base64 string')
            try:
                return base64.b64decode(text.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise ValueError(f'{{"$bytes": {text[:40]!r}}} is not valid base64') from None
        return {k: from_json(v) for k, v in value.items()}
    return value
