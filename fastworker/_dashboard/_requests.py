"""Reading what an HTTP client sent: the body, a submission, ``?wait=``, ``?limit=``.

Pure checks (no trio): each bad input is an ``ApiError`` that says what to send
instead. Reading the body is bounded as it streams, before any JSON parsing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
from starlette.requests import Request

from .._errors import NotSerializable, PayloadTooLarge
from .._messages import Submission
from .._model import Priority
from .._serialization import pack_arguments
from ._json import from_json
from ._responses import ApiError

MAX_WAIT = 300.0
"""Longest ``?wait=`` a read may ask for, in seconds."""
SUBMIT_FIELDS = ("task", "args", "kwargs", "priority", "countdown", "eta", "unique_key")
"""The fields of ``POST /api/v1/tasks``."""


def max_body(max_payload: int) -> int:
    """The largest request body for ``max_payload`` bytes of packed arguments."""
    return max_payload * 4 + 64 * 1024  # base64 and JSON overhead


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused as soon as it is over ``limit`` bytes.

    Raises:
        ApiError: 413 PayloadTooLarge, declared or streamed.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "PayloadTooLarge", f"the body is {declared} bytes, over {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "PayloadTooLarge", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _finite(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, "BadRequest", f"{what} must be a number, got {value!r}")
    return float(value)


def _eta(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError(
                400, "BadRequest", f"eta {value!r} is neither a POSIX timestamp nor ISO 8601"
            ) from None
        if when.tzinfo is None:
            raise ApiError(400, "BadRequest", f"eta {value!r} needs a timezone (e.g. +00:00)")
        return when.timestamp()
    return _finite(value, "eta")


def parse_submission(body: bytes, max_payload: int, new_id: Callable[[], str]) -> Submission:
    """The JSON body of ``POST /api/v1/tasks`` as a Submission (its id from ``new_id``,
    asked only once the body is valid).

    Raises:
        ApiError: 400 (not JSON, unknown or ill-typed fields, countdown and eta both,
            arguments msgpack cannot carry) or 413 (packed arguments over ``max_payload``).
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BadRequest", 'the body must be a JSON object with a "task"')
    extra = sorted(set(data) - set(SUBMIT_FIELDS))
    if extra:
        raise ApiError(
            400,
            "BadRequest",
            f"unknown field(s) {', '.join(extra)}: use {', '.join(SUBMIT_FIELDS)}",
        )
    name = data.get("task")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "BadRequest", '"task" must be the task name (a string)')
    args = data.get("args") or []
    kwargs = data.get("kwargs") or {}
    if not isinstance(args, list):
        raise ApiError(400, "BadRequest", '"args" must be a JSON array')
    if not isinstance(kwargs, dict):
        raise ApiError(400, "BadRequest", '"kwargs" must be a JSON object')
    priority = data.get("priority")
    prio: int | None = None
    if priority is not None:
        try:
            prio = int(Priority.parse(priority))
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
    countdown = _finite(data.get("countdown"), "countdown")
    eta = _eta(data.get("eta"))
    if countdown is not None and eta is not None:
        raise ApiError(400, "BadRequest", "give countdown or eta, not both")
    try:
        payload = pack_arguments(from_json(args), from_json(kwargs), limit=max_payload)
    except ValueError as exc:
        raise ApiError(400, "BadRequest", str(exc)) from None
    except NotSerializable as exc:
        raise ApiError(400, "NotSerializable", str(exc)) from None
    except PayloadTooLarge as exc:
        raise ApiError(413, "PayloadTooLarge", str(exc)) from None
    fields: dict[str, Any] = {}
    unique_key = data.get("unique_key")
    if unique_key is not None:
        if not isinstance(unique_key, str):
            raise ApiError(400, "BadRequest", '"unique_key" must be a string')
        if "unique_key" not in attrs.fields_dict(Submission):
            raise ApiError(400, "BadRequest", "this control plane does not support unique_key yet")
        fields["unique_key"] = unique_key
    return Submission(
        new_id(),
        name,
        payload,
        prio,
        eta,
        None if countdown is None else max(0.0, countdown),
        **fields,
    )


def parse_wait(text: str) -> float:
    """``?wait=SECONDS`` of a read: 0 to ``MAX_WAIT``.

    Raises:
        ApiError: 400, not a number in that range.
    """
    try:
        wait = float(text)
    except ValueError:
        wait = -1.0
    if not (0 <= wait <= MAX_WAIT) or not math.isfinite(wait):
        raise ApiError(400, "BadRequest", f"wait must be 0 to {MAX_WAIT:g} seconds, got {text!r}")
    return wait


def parse_limit(text: str) -> int:
    """``?limit=`` of the recent-task list, clamped to 1..1000.

    Raises:
        ApiError: 400, not a whole number.
    """
    try:
        return max(1, min(1000, int(text)))
    except ValueError:
        raise ApiError(400, "BadRequest", "limit must be a whole number") from None
