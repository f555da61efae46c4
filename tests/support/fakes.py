"""Small stand-ins the pure parts' tests share: a settable clock, a keyed submission."""

from __future__ import annotations

import attrs


@attrs.frozen
class Keyed:
    """A submission as the unique-key tables see it: an id and maybe a unique key."""

    id: str
    unique_key: str | None = None


class SettableClock:
    """A clock a test sets by hand (``clock.t = ...``): the tables' ``now``."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
