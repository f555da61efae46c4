"""The run log both routing test services append to (one order for both)."""

from __future__ import annotations

log: list[tuple[str, str, float]] = []
"""(task, tag, trio time) of every run, in the order they happened."""
