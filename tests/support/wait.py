"""Waiting for a condition in one line, with a message that says what never happened.

Prefer waiting for the event itself (an ``Event`` the task sets, ``statistics()`` of the
object under test through a method that blocks, ``trio.testing.wait_all_tasks_blocked()``
on the memory transport). Where the only thing to watch is a value that changes (a
counter in ``statistics()``, a file, a process state, another process's answer),
``wait_until`` polls it with a bounded backoff and fails with what was awaited and the
last value it saw, instead of a bare ``TooSlowError`` from a hand-written loop.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio

T = TypeVar("T")

#: First and longest pause between two looks at the condition (real or virtual seconds).
FIRST_POLL = 0.005
MAX_POLL = 0.1


class WaitTimeout(AssertionError):
    """``wait_until`` gave up: the condition never held within its timeout."""


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 (the helper must see the timeout to say what it missed)
    what: str | None = None,
    observe: Callable[[], Any] | None = None,
    max_poll: float = MAX_POLL,
) -> T:
    """Look at ``condition()`` until it is truthy, and return that value.

    ``condition`` may be a plain or an async callable; an exception it raises (a process
    that died, a connection refused) propagates at once. Between looks it sleeps
    5 ms, doubling up to ``max_poll``: quick when the event is near, light on a loaded
    machine when it is not. Under the autojump clock the sleeps are virtual.

    It takes ``timeout`` itself, unlike trio's own waits whose callers own the timeout:
    an enclosing ``fail_after`` could only say "too slow", not what never happened and
    what was seen instead. An enclosing cancel scope still applies.

    Args:
        condition: what to look at; a truthy result ends the wait.
        timeout: seconds (of the current trio clock) before giving up.
        what: the awaited event in words, for the failure message (default: the
            condition's source line).
        observe: what to report on timeout instead of the condition's last result
            (e.g. the whole ``statistics()`` when the condition picks one counter).
        max_poll: the longest pause between two looks.

    Returns:
        The first truthy result of ``condition()``.

    Raises:
        WaitTimeout: ``condition()`` was still falsy after ``timeout`` seconds; the
            message names ``what`` and the last observed value.
    """
    delay = min(FIRST_POLL, max_poll)
    last: Any = None
    looks = 0
    with trio.move_on_after(timeout) as scope:
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            looks += 1
            last = result
            if result:
                return result
            await trio.sleep(delay)
            delay = min(delay * 2, max_poll)
    assert scope.cancelled_caught
    seen = observe() if observe is not None else last
    if inspect.isawaitable(seen):
        seen = await seen
    raise WaitTimeout(
        f"timed out after {timeout} s ({looks} looks) waiting for "
        f"{what or _describe(condition)}; last observed: {seen!r}"
    )


def _describe(condition: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(condition).strip()
    except (OSError, TypeError):
        return repr(condition)
