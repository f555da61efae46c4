"""``support.wait_until``: returns the first truthy look, fails saying what it waited for."""

from __future__ import annotations

import pytest
import trio
import trio.lowlevel
import trio.testing

from support import WaitTimeout, wait_until


async def test_wait_until_returns_the_first_truthy_value_of_a_plain_or_async_condition(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A counter bumped by another task is seen once it reaches the mark; an async
    condition is awaited; the truthy value itself is returned."""
    box = {"n": 0}

    async def bump() -> None:
        for _ in range(5):
            await trio.sleep(1)
            box["n"] += 1

    async def async_look() -> int | None:
        await trio.lowlevel.checkpoint()
        return box["n"] if box["n"] >= 5 else None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(bump)
        assert await wait_until(lambda: box["n"] >= 3 and box["n"], timeout=10) == 3
        assert await wait_until(async_look, timeout=10) == 5
    assert trio.current_time() < 10  # bounded backoff: seen soon after, not at the end


async def test_wait_until_fails_naming_what_and_the_last_observed_value(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On timeout the error says what was awaited and what was last seen (``observe``)."""
    stats = {"received": 1}
    with pytest.raises(WaitTimeout) as caught:
        await wait_until(
            lambda: stats["received"] >= 2,
            timeout=3,
            what="two datagrams received",
            observe=lambda: stats,
        )
    assert "two datagrams received" in str(caught.value)
    assert "{'received': 1}" in str(caught.value)
    assert 3 <= trio.current_time() < 3.2


async def test_wait_until_lets_an_error_of_the_condition_through() -> None:
    """An exception from the condition (a process that died) ends the wait at once."""

    def look() -> bool:
        raise ProcessLookupError("gone")

    with pytest.raises(ProcessLookupError):
        await wait_until(look, timeout=10)
