"""The batch sender (``fastworker._wire``): split to fit, wait for room per ref, replace
what can never fit, report what is lost. Fake refs stand in for links."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import actors
from fastworker._wire import Sender, chunks


class FakeRef(actors.ActorRef):
    """A ref whose link takes at most ``max_items`` items per message and has room only
    while ``open`` is set."""

    def __init__(self, name: str, max_items: int = 1000) -> None:
        self.name = name
        self.max_items = max_items
        self.open = trio.Event()
        self.open.set()
        self.got: list[list[Any]] = []

    @property
    def node_id(self) -> str:
        return "fake"

    def _check(self, message: list[Any]) -> None:
        if len(message) > self.max_items:
            raise actors.MessageTooLarge(f"{len(message)} items > {self.max_items}")

    async def tell(self, message: Any, *, sender: actors.ActorRef | None = None) -> None:
        self._check(message)
        await self.open.wait()
        self.got.append(message)

    def tell_nowait(self, message: Any, *, sender: actors.ActorRef | None = None) -> None:
        self._check(message)
        if not self.open.is_set():
            raise actors.MailboxFull("no room")
        self.got.append(message)

    async def ask(self, message: Any, *, sender: actors.ActorRef | None = None) -> Any:
        raise NotImplementedError


def _sender(lost: list[Any]) -> Sender[int]:
    return Sender(
        "numbers",
        lambda items, last, extra: list(items),
        lambda item: abs(item),
        lambda item, exc: -1 if item > 0 and item != 999 else None,
        budget=100,
        on_lost=lambda ref, items, exc: lost.append((ref.name, items)),
    )


def test_chunks_keep_order_and_put_a_big_item_alone() -> None:
    """Items are split by estimated size, in order; an item over the budget goes alone."""
    assert chunks([10, 20, 80, 200, 5], lambda x: x, 100) == [[10, 20], [80], [200], [5]]
    assert chunks([], lambda x: x, 100) == [[]]


async def test_a_full_ref_waits_without_holding_back_another() -> None:
    """Ref A has no room: its parts wait, in order, and go when it has; ref B meanwhile
    gets its items at once."""
    lost: list[Any] = []
    sender = _sender(lost)
    a, b = FakeRef("a"), FakeRef("b")
    async with trio.open_nursery() as nursery:
        sender.start(nursery)
        a.open = trio.Event()
        sender.send_nowait(a, [60, 60, 60])
        sender.send_nowait(a, [1])
        sender.send_nowait(b, [2, 3])
        assert b.got == [[2, 3]] and a.got == []
        assert sender.backlog == 4
        a.open.set()
        with trio.fail_after(5):
            await trio.testing.wait_all_tasks_blocked()
        assert sender.backlog == 0
    assert a.got == [[60], [60], [60], [1]]
    assert lost == []


async def test_too_large_parts_are_halved_and_a_lone_item_replaced() -> None:
    """A link that takes 2 items per message gets a batch of 5 in halves; an item that
    never fits is replaced (-1) or, when it cannot be, reported lost."""
    lost: list[Any] = []
    sender = _sender(lost)
    ref = FakeRef("r", max_items=2)
    sender.send_nowait(ref, [1, 2, 3, 4, 5])
    assert [x for part in ref.got for x in part] == [1, 2, 3, 4, 5]
    assert all(len(part) <= 2 for part in ref.got)
    tiny = FakeRef("tiny", max_items=0)
    sender.send_nowait(tiny, [7])
    sender.send_nowait(tiny, [999])
    assert tiny.got == []
    assert lost == [("tiny", [-1]), ("tiny", [999])]
