"""Unit tests for fastworker._result_cache.ResultStore: LRU by count, TTL, byte budget."""

from __future__ import annotations

import pytest

from fastworker._messages import Outcome
from fastworker._result_cache import ResultStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def outcome(task_id: str, value: bytes = b"\x01") -> Outcome:
    """A successful outcome carrying ``value``."""
    return Outcome(task_id, "success", 1, value)


def test_lru_evicts_the_least_recently_used() -> None:
    """Past max_entries the oldest untouched entry goes; a get() refreshes an entry."""
    store = ResultStore(max_entries=3, ttl=100.0, clock=FakeClock())
    for name in ("a", "b", "c"):
        assert store.put(outcome(name))
    assert store.get("a") is not None  # "a" is now the most recently used
    store.put(outcome("d"))
    assert "b" not in store
    assert [name in store for name in ("a", "c", "d")] == [True, True, True]
    assert store.evicted == 1
    assert len(store) == 3


def test_a_peek_does_not_refresh_an_entry() -> None:
    """get(refresh=False) (a result pushed to its watcher) leaves the LRU order alone, so
    results nobody has collected yet are not evicted before ones just delivered."""
    store = ResultStore(max_entries=3, ttl=100.0, clock=FakeClock())
    for name in ("a", "b", "c"):
        store.put(outcome(name))
    assert store.get("a", refresh=False) is not None
    store.put(outcome("d"))
    assert "a" not in store
    assert [name in store for name in ("b", "c", "d")] == [True, True, True]


def test_ttl_expires_entries() -> None:
    """An entry is gone once its TTL (from storing) has passed, on get() and on expire()."""
    clock = FakeClock()
    store = ResultStore(max_entries=10, ttl=5.0, clock=clock)
    store.put(outcome("a"))
    clock.now = 3.0
    store.put(outcome("b"))
    clock.now = 4.9
    assert store.get("a") is not None
    clock.now = 5.0
    assert store.get("a") is None
    assert store.get("b") is not None
    clock.now = 8.0
    assert store.expire() == 1
    assert len(store) == 0
    assert store.expired == 2


def test_byte_budget_evicts_old_entries() -> None:
    """Past max_bytes the oldest entries are evicted, but the newest is always kept."""
    store = ResultStore(max_entries=100, ttl=100.0, max_bytes=2_000, clock=FakeClock())
    store.put(outcome("a", b"x" * 900))
    store.put(outcome("b", b"x" * 900))
    assert "a" not in store
    assert "b" in store
    store.put(outcome("huge", b"x" * 10_000))
    assert "huge" in store
    assert len(store) == 1
    assert store.bytes > store.max_bytes


def test_a_result_stored_twice_is_kept_once() -> None:
    """A second outcome for the same id (a redelivery) is ignored and counted as duplicate."""
    store = ResultStore(clock=FakeClock())
    assert store.put(outcome("a", b"first"))
    assert not store.put(outcome("a", b"second"))
    stored = store.get("a")
    assert stored is not None
    assert stored.value == b"first"
    assert (store.stored, store.duplicates, len(store)) == (1, 1, 1)


@pytest.mark.parametrize(
    "options", [{"max_entries": 0}, {"ttl": 0.0}, {"ttl": -1.0}, {"max_bytes": 0}]
)
def test_invalid_limits_are_refused(options: dict[str, float]) -> None:
    """Non-positive size, TTL or byte budget is a ValueError."""
    with pytest.raises(ValueError, match="positive"):
        ResultStore(**options)  # type: ignore[arg-type]
