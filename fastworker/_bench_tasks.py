"""The trivial task ``fastworker bench`` runs."""

from ._registry import task


@task(name="bench.add")
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y


@task(name="bench.total")
def total(values: list[int]) -> int:
    """The sum of a list (a chord's callback)."""
    return sum(values)
