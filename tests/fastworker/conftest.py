"""Shared set-up for the fastworker tests: make ``sample_tasks`` importable by module name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import sample_tasks  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_sample_tasks() -> Iterator[None]:
    """Every test starts with empty call counters, event logs and gates."""
    sample_tasks.reset()
    yield
    sample_tasks.reset()
