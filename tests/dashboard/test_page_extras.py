"""The page's extra statistic cards read as text, not as raw JSON."""

from __future__ import annotations

from fastworker._dashboard._page import _extra_text, _extras


def test_a_table_of_counts_reads_as_names_and_counts() -> None:
    """``waiting`` (tasks no worker can run, by name) shows "name: count, ..." sorted by
    name, and "none" when empty, never ``{}``; other structures stay JSON."""
    assert _extra_text({}) == "none"
    assert _extra_text({"b.task": 2, "a.task": 1}) == "a.task: 1, b.task: 2"
    assert _extra_text({"x": [1]}) == '{"x": [1]}'
    card = _extras({"waiting": {}})
    assert "waiting for a worker" in card and ">none<" in card and "{}" not in card
