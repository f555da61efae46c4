"""Tasks for the security tests (imported by module name).

The task registry is process-wide and the whole suite runs in one process: the names
carry a prefix so they cannot collide with other test modules' tasks.
"""

from __future__ import annotations

from typing import Any

from fastworker import task


@task
def security_echo(value: Any) -> Any:
    """Return the argument unchanged."""
    return value


@task
def security_add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y
