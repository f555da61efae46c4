"""Hypothesis profiles: ``default`` for every run, ``slow`` for long fuzzing runs.

tests/conftest.py registers them and loads one per session: ``HYPOTHESIS_PROFILE`` if
set, else ``slow`` with ``--run-slow``, else ``default`` (``--hypothesis-profile``
still wins). A property that makes fewer examples than the profile in a normal run
asks for them with ``examples(n)``: ``n`` under ``default``, the profile's
``max_examples`` under any other, so one test serves both runs.
"""

from __future__ import annotations

from hypothesis import settings

SLOW_EXAMPLES = 10_000

HYPOTHESIS_PROFILES: dict[str, settings] = {
    # "default" is Hypothesis' own (100 examples unless a test says otherwise).
    # Long runs on a busy machine: a 200 ms deadline would only measure the machine.
    "slow": settings(max_examples=SLOW_EXAMPLES, deadline=None),
}
"""The profiles tests/conftest.py registers, by name."""


def active_profile() -> str:
    """The loaded profile, without the suffixes Hypothesis' pytest plugin adds for
    ``--hypothesis-verbosity`` or ``--hypothesis-explain``."""
    return settings.get_current_profile_name().split("-with-")[0]


def examples(default: int) -> int:
    """How many examples a property makes: ``default`` in a normal run, the profile's
    ``max_examples`` otherwise (10,000 under ``slow``)."""
    if active_profile() == "default":
        return default
    return settings.default.max_examples
