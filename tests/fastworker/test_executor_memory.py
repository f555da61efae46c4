"""The executor's pure, trio-free memory: recent successes kept for redelivered attempts."""

from __future__ import annotations

from fastworker._executor import RecentSuccesses
from fastworker._messages import Outcome


def _success(task_id: str, attempt: int = 1, size: int = 1) -> Outcome:
    return Outcome(task_id, "SUCCESS", attempt, b"x" * size)


def test_a_remembered_success_is_taken_once() -> None:
    """take() answers the remembered outcome once, then forgets it and its bytes."""
    recent = RecentSuccesses()
    recent.remember(_success("a", attempt=2, size=10), now=0.0)
    assert len(recent) == 1 and recent.bytes == 10
    taken = recent.take("a")
    assert taken is not None and taken.attempt == 2
    assert recent.take("a") is None
    assert len(recent) == 0 and recent.bytes == 0


def test_the_oldest_go_first_past_the_count_limit() -> None:
    """Past max_entries, the oldest successes are dropped, the newest kept."""
    recent = RecentSuccesses(max_entries=2)
    for name in "abc":
        recent.remember(_success(name), now=0.0)
    assert recent.take("a") is None
    assert recent.take("b") is not None and recent.take("c") is not None


def test_the_byte_limit_bounds_what_is_kept() -> None:
    """Results larger than a quarter of the byte budget are not kept; the total stays bounded."""
    recent = RecentSuccesses(max_bytes=100)
    recent.remember(_success("big", size=26), now=0.0)
    assert len(recent) == 0
    for k in range(5):
        recent.remember(_success(f"t{k}", size=25), now=0.0)
    assert recent.bytes <= 100
    assert recent.take("t0") is None and recent.take("t4") is not None


def test_expired_successes_are_dropped_when_a_new_one_arrives() -> None:
    """An entry older than its TTL is dropped on the next remember()."""
    recent = RecentSuccesses(ttl=10.0)
    recent.remember(_success("old"), now=0.0)
    recent.remember(_success("new"), now=11.0)
    assert recent.take("old") is None
    assert recent.take("new") is not None


def test_remembering_a_task_again_replaces_its_bytes() -> None:
    """A second success of the same task replaces the first without double-counting bytes."""
    recent = RecentSuccesses()
    recent.remember(_success("a", attempt=1, size=10), now=0.0)
    recent.remember(_success("a", attempt=2, size=4), now=1.0)
    assert len(recent) == 1 and recent.bytes == 4
    taken = recent.take("a")
    assert taken is not None and taken.attempt == 2
