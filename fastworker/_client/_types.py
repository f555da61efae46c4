"""The client's type aliases and its statistics record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeAlias, TypeVar

import attrs

from .._model import Priority

P = ParamSpec("P")
R = TypeVar("R")

TaskRef: TypeAlias = "str | Callable[..., Any]"
"""A task: its registered name, or the ``@task`` function itself."""
PriorityLike: TypeAlias = "Priority | str | int"
When: TypeAlias = "datetime | float"
BatchItem: TypeAlias = (
    "tuple[TaskRef, Sequence[Any]] | tuple[TaskRef, Sequence[Any], dict[str, Any]]"
)


@attrs.frozen
class ClientStatistics:
    """A client's own bookkeeping (from ``Client.statistics()``): all 0 when idle."""

    waited_ids: int
    waiters: int
    submitting: int
    event_streams: int
    connected: bool
