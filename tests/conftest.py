"""Suite-wide options: slow soak and benchmark runs are skipped unless --run-slow is given.

This directory goes on ``sys.path`` so that every test folder imports the shared helpers
as ``support`` (tests/support/). Hypothesis runs under the ``default`` profile, or the
``slow`` one (10,000 examples per property) with ``--run-slow`` or
``HYPOTHESIS_PROFILE=slow``; see support/fuzz.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # pytest's default import mode does this too; others do not
    sys.path.insert(0, HERE)

from support import HYPOTHESIS_PROFILES  # noqa: E402 (needs the path above)

for _name, _profile in HYPOTHESIS_PROFILES.items():
    settings.register_profile(_name, _profile)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --run-slow."""
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow, and Hypothesis under its 'slow' profile",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Load the Hypothesis profile: --hypothesis-profile, else $HYPOTHESIS_PROFILE, else
    "slow" with --run-slow, else "default"."""
    if config.getoption("hypothesis_profile", default=None):
        return  # Hypothesis' own plugin loads it
    name = os.environ.get("HYPOTHESIS_PROFILE") or (
        "slow" if config.getoption("--run-slow") else "default"
    )
    settings.load_profile(name)


def pytest_report_header(config: pytest.Config) -> str:
    """Say which Hypothesis profile runs (the plugin says so only with -v)."""
    return f"hypothesis profile: {settings.get_current_profile_name()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow tests unless --run-slow."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
