"""UsageError: a bad command-line flag value or combination (exit code 2).

Raised by the CLI and by ``bench`` while they check their flags, so it lives below both
(``bench`` must not import the CLI, which imports ``bench``).
"""

from __future__ import annotations


class UsageError(Exception):
    """A bad flag value or combination (exit code 2)."""
