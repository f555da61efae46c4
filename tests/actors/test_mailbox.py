"""Tests of local actors: tell/ask, bounded mailboxes, overflow, dead letters, batches, stopping.

Nothing here depends on time, so these run on trio's real clock; every wait is for an
event (an actor reaching a point, all tasks being blocked) under ``trio.fail_after``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing

import actors
from actors import (
    Actor,
    ActorCrashed,
    ActorGone,
    ActorNotFound,
    Context,
    MailboxFull,
    NameTaken,
    Overflow,
    open_actor_system,
)

TIMEOUT = 5.0


async def settle() -> None:
    """Wait until every task is blocked: whatever was going to happen has happened."""
    await trio.testing.wait_all_tasks_blocked()


class Echo(Actor):
    """Answers every message with the message itself."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        return message


class Gated(Actor):
    """Records every message; a message ``("wait", event)`` blocks until the event is set.

    ``entered`` is set whenever the actor starts waiting on a gate, so a test knows the
    actor is busy (and its mailbox will fill) without guessing.
    """

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.entered = trio.Event()

    async def receive(self, ctx: Context, message: Any) -> Any:
        self.seen.append(message)
        if isinstance(message, tuple) and message[0] == "wait":
            self.entered.set()
            await message[1].wait()
        return message


# -- tell and ask ------------------------------------------------------------------------


async def test_ask_returns_the_handlers_value() -> None:
    """An ask resolves with whatever ``receive`` returned for that message."""

    class Doubler(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            return message * 2

    async with open_actor_system() as system:
        ref = await system.spawn("doubler", Doubler)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask(21) == 42
            assert await ref.ask("ab") == "abab"


async def test_tell_delivers_in_order_and_ask_sees_prior_tells() -> None:
    """Tells are delivered in FIFO order, and an ask queued after them sees their effects."""

    class Accumulator(Actor):
        def __init__(self) -> None:
            self.items: list[int] = []

        async def receive(self, ctx: Context, message: Any) -> Any:
            if message == "get":
                return list(self.items)
            self.items.append(message)
            return None

    async with open_actor_system() as system:
        ref = await system.spawn("acc", Accumulator)
        with trio.fail_after(TIMEOUT):
            for i in range(5):
                await ref.tell(i)
            ref.tell_nowait(5)
            assert await ref.ask("get") == [0, 1, 2, 3, 4, 5]


async def test_ctx_sender_is_the_sender_of_a_tell() -> None:
    """``ctx.sender`` is the ``sender=`` of the message, so an actor can reply with a tell."""
    send, receive = trio.open_memory_channel[Any](math.inf)

    class Ponger(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            assert ctx.sender is not None
            await ctx.sender.tell(("pong", message), sender=ctx.self)

    class Inbox(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            send.send_nowait((message, ctx.sender))

    async with open_actor_system() as system:
        ponger = await system.spawn("ponger", Ponger)
        inbox = await system.spawn("inbox", Inbox)
        with trio.fail_after(TIMEOUT):
            await ponger.tell("ping", sender=inbox)
            message, sender = await receive.receive()
        assert message == ("pong", "ping")
        assert sender == ponger


# -- bounded mailboxes -------------------------------------------------------------------


async def test_tell_blocks_while_the_mailbox_is_full_until_the_actor_drains() -> None:
    """``await tell`` on a full mailbox waits (backpressure) and completes once there is room."""
    gated = Gated()
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn("gated", gated, capacity=2)
        with trio.fail_after(TIMEOUT):
            await ref.tell(("wait", gate))
            await gated.entered.wait()  # the actor holds message 1; the mailbox is empty
            await ref.tell(2)
            await ref.tell(3)  # the mailbox is now full (2 of 2)
            assert ref.mailbox.statistics().queued == 2

            finished = trio.Event()

            async def blocked_tell() -> None:
                await ref.tell(4)
                finished.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocked_tell)
                await settle()
                assert not finished.is_set(), "tell returned although the mailbox was full"
                assert ref.mailbox.statistics().queued == 2
                gate.set()
                await finished.wait()
            assert await ref.ask("sync") == "sync"
        assert gated.seen == [("wait", gate), 2, 3, 4, "sync"]
        assert ref.mailbox.statistics().rejected == 0


async def test_tell_nowait_on_a_full_reject_mailbox_raises_and_dead_letters() -> None:
    """REJECT: ``tell_nowait`` on a full mailbox raises MailboxFull and dead-letters the message."""
    gated = Gated()
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn("gated", gated, capacity=2, overflow=Overflow.REJECT)
        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(("wait", gate))
            await gated.entered.wait()
            ref.tell_nowait(2)
            ref.tell_nowait(3)
            with pytest.raises(MailboxFull, match="full"):
                ref.tell_nowait(4)
            assert system.dead_letters.count == 1
            assert system.dead_letters.recent[-1] == ("gated", 4, "mailbox full")
            stats = ref.mailbox.statistics()
            assert (stats.queued, stats.rejected, stats.dropped) == (2, 1, 0)
            gate.set()
            assert await ref.ask("sync") == "sync"
        assert gated.seen == [("wait", gate), 2, 3, "sync"]


async def test_drop_oldest_moves_the_oldest_queued_message_to_dead_letters() -> None:
    """DROP_OLDEST: a message to a full mailbox is queued and the oldest queued one dropped."""
    gated = Gated()
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn("gated", gated, capacity=2, overflow="drop_oldest")
        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(("wait", gate))
            await gated.entered.wait()
            ref.tell_nowait(2)
            ref.tell_nowait(3)
            ref.tell_nowait(4)  # does not raise: 2 is dropped instead
            assert system.dead_letters.count == 1
            to, message, reason = system.dead_letters.recent[-1]
            assert (to, message) == ("gated", 2)
            assert "drop_oldest" in reason
            stats = ref.mailbox.statistics()
            assert (stats.queued, stats.rejected, stats.dropped) == (2, 0, 1)
            gate.set()
            assert await ref.ask("sync") == "sync"
        assert gated.seen == [("wait", gate), 3, 4, "sync"]


async def test_drop_oldest_fails_a_dropped_ask_with_actor_gone() -> None:
    """An ask dropped by DROP_OLDEST is answered with ActorGone instead of hanging forever."""
    gated = Gated()
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn("gated", gated, capacity=1, overflow=Overflow.DROP_OLDEST)
        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(("wait", gate))
            await gated.entered.wait()
            errors: list[BaseException] = []

            async def ask_it() -> None:
                try:
                    await ref.ask("dropped")
                except ActorGone as exc:
                    errors.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_it)
                await settle()  # the ask is queued
                ref.tell_nowait("newer")  # pushes the ask out
            assert len(errors) == 1
            gate.set()
            assert await ref.ask("sync") == "sync"
        assert gated.seen == [("wait", gate), "newer", "sync"]


async def test_statistics_report_depth_capacity_and_counters() -> None:
    """``statistics()`` reports queued/capacity and counts received, rejected and closed."""
    gated = Gated()
    gate = trio.Event()
    async with open_actor_system(mailbox_capacity=3) as system:
        ref = await system.spawn("gated", gated)
        stats = ref.mailbox.statistics()
        assert stats == actors.MailboxStatistics(
            name="gated", queued=0, capacity=3, received=0, rejected=0, dropped=0, closed=False
        )
        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(("wait", gate))
            await gated.entered.wait()
            for i in range(3):
                ref.tell_nowait(i)
            with pytest.raises(MailboxFull):
                ref.tell_nowait(99)
            stats = ref.mailbox.statistics()
            assert (stats.queued, stats.capacity, stats.received, stats.rejected) == (3, 3, 4, 1)
            assert len(ref.mailbox) == 3
            gate.set()
            assert await ref.ask("sync") == "sync"
            stats = ref.mailbox.statistics()
            assert (stats.queued, stats.received, stats.closed) == (0, 5, False)
    assert ref.mailbox.statistics().closed
    assert system.statistics().dead_letters == 1


def test_mailbox_capacity_must_be_positive() -> None:
    """A mailbox with no room at all is refused up front."""
    with pytest.raises(ValueError, match="capacity"):
        actors.Mailbox("x", 0, Overflow.REJECT, actors.DeadLetters())


# -- stopped actors ----------------------------------------------------------------------


class Stoppable(Actor):
    """Stops itself (normally) on the message "stop"; echoes everything else."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        if message == "stop":
            ctx.stop()
            return "stopping"
        return message


async def stop_and_wait(system: actors.ActorSystem, ref: actors.LocalRef) -> None:
    """Ask the actor to stop and wait until its name is gone from the system."""
    assert await ref.ask("stop") == "stopping"
    await settle()
    assert system.lookup(ref.name) is None
    assert not ref.alive


async def test_senders_blocked_on_a_full_mailbox_are_released_when_the_actor_stops() -> None:
    """A tell waiting for room is dead-lettered, and a waiting ask fails with ActorGone, when
    the actor stops instead of draining its mailbox."""

    class StopAfterGate(Actor):
        def __init__(self) -> None:
            self.entered = trio.Event()

        async def receive(self, ctx: Context, message: Any) -> Any:
            if isinstance(message, trio.Event):
                self.entered.set()
                await message.wait()
                ctx.stop()
            return message

    actor = StopAfterGate()
    gate = trio.Event()
    outcomes: dict[str, Any] = {}
    async with open_actor_system() as system:
        ref = await system.spawn("s", actor, restart="transient", capacity=1)

        async def blocked_tell() -> None:
            await ref.tell("blocked tell")
            outcomes["tell"] = "returned"

        async def blocked_ask() -> None:
            try:
                outcomes["ask"] = await ref.ask("blocked ask")
            except ActorGone as exc:
                outcomes["ask"] = exc

        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(gate)
            await actor.entered.wait()
            ref.tell_nowait("queued")  # the mailbox (capacity 1) is now full
            async with trio.open_nursery() as nursery:
                nursery.start_soon(blocked_tell)
                nursery.start_soon(blocked_ask)
                await settle()
                assert outcomes == {}
                gate.set()
    assert outcomes["tell"] == "returned"
    assert isinstance(outcomes["ask"], ActorGone)
    dead = {message for to, message, _ in system.dead_letters.recent if to == "s"}
    assert dead == {"queued", "blocked tell"}


async def test_ask_to_a_stopped_actor_raises_actor_gone_at_once() -> None:
    """An ask to an actor that stopped raises ActorGone immediately (it never waits)."""
    async with open_actor_system() as system:
        ref = await system.spawn("s", Stoppable, restart="transient")
        with trio.fail_after(TIMEOUT):
            await stop_and_wait(system, ref)
        with trio.fail_after(TIMEOUT), pytest.raises(ActorGone, match="'s'"):
            await ref.ask("hello")


async def test_tell_to_a_stopped_actor_goes_to_dead_letters() -> None:
    """A tell (either kind) to a stopped actor is counted and kept in ``system.dead_letters``."""
    async with open_actor_system() as system:
        ref = await system.spawn("s", Stoppable, restart="transient")
        with trio.fail_after(TIMEOUT):
            await stop_and_wait(system, ref)
            before = system.dead_letters.count
            await ref.tell("late-1")
            ref.tell_nowait("late-2")
        assert system.dead_letters.count == before + 2
        assert list(system.dead_letters.recent)[-2:] == [
            ("s", "late-1", "actor stopped"),
            ("s", "late-2", "actor stopped"),
        ]
        assert system.statistics().dead_letters == before + 2


async def test_queued_asks_fail_with_actor_gone_when_the_actor_stops() -> None:
    """Asks still waiting in the mailbox when the actor stops are answered with ActorGone."""

    class StopAfterGate(Actor):
        def __init__(self) -> None:
            self.entered = trio.Event()

        async def receive(self, ctx: Context, message: Any) -> Any:
            if isinstance(message, trio.Event):
                self.entered.set()
                await message.wait()
                ctx.stop()
                return "stopped"
            return message

    actor = StopAfterGate()
    gate = trio.Event()
    outcomes: list[Any] = []
    async with open_actor_system() as system:
        ref = await system.spawn("s", actor, restart="transient")

        async def ask_it(i: int) -> None:
            try:
                outcomes.append(await ref.ask(i))
            except ActorGone as exc:
                outcomes.append(exc)

        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                ref.tell_nowait(gate)
                await actor.entered.wait()
                for i in range(3):
                    nursery.start_soon(ask_it, i)
                await settle()
                assert ref.mailbox.statistics().queued == 3
                gate.set()
    assert len(outcomes) == 3
    assert all(isinstance(o, ActorGone) for o in outcomes), outcomes


async def test_stop_skips_the_rest_of_the_batch() -> None:
    """``ctx.stop()`` ends the actor after the current message, even mid-batch.

    Messages that arrived in the same batch after the one that stopped the actor are not
    handled: queued asks get ActorGone rather than a reply from a stopped actor.
    """
    handled: list[Any] = []

    class Quick(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            handled.append(message)
            if message == "stop":
                ctx.stop()
            return message

    async with open_actor_system() as system:
        ref = await system.spawn("q", Quick, restart="transient")
        later = [actors.Future(), actors.Future()]
        # Queued without a checkpoint in between, so the actor takes all three as one batch.
        ref.tell_nowait("stop")
        for i, future in enumerate(later):
            ref.mailbox.put_nowait(actors.Delivery(f"after-{i}", None, future))
        with trio.fail_after(TIMEOUT):
            for future in later:
                with pytest.raises(ActorGone):
                    await future.wait()
        assert handled == ["stop"]


# -- batches, errors, names ------------------------------------------------------------


async def test_ready_messages_arrive_in_one_batch() -> None:
    """Messages that are all ready when the actor wakes are handed to one ``handle_batch``."""
    batches: list[list[Any]] = []

    class Batcher(Actor):
        async def handle_batch(self, ctx: Context, batch: list[actors.Delivery]) -> None:
            batches.append([d.message for d in batch])
            await super().handle_batch(ctx, batch)

        async def receive(self, ctx: Context, message: Any) -> Any:
            return message

    async with open_actor_system() as system:
        ref = await system.spawn("b", Batcher)
        with trio.fail_after(TIMEOUT):
            for i in range(5):
                ref.tell_nowait(i)  # no checkpoint in between: all five are ready at once
            assert await ref.ask("sync") == "sync"
    assert batches == [[0, 1, 2, 3, 4, "sync"]]


async def test_batch_limit_caps_the_batch_size() -> None:
    """``batch_limit`` bounds how many messages one ``handle_batch`` call gets."""
    sizes: list[int] = []

    class Small(Actor):
        batch_limit = 2

        async def handle_batch(self, ctx: Context, batch: list[actors.Delivery]) -> None:
            sizes.append(len(batch))
            await super().handle_batch(ctx, batch)

        async def receive(self, ctx: Context, message: Any) -> Any:
            return message

    async with open_actor_system() as system:
        ref = await system.spawn("small", Small)
        with trio.fail_after(TIMEOUT):
            for i in range(5):
                ref.tell_nowait(i)
            await ref.ask("sync")
    assert sizes == [2, 2, 2]


async def test_reply_errors_answer_the_ask_without_crashing_the_actor() -> None:
    """An exception listed in ``reply_errors`` is the ask's answer; the actor keeps its state."""
    starts: list[int] = []

    class Validator(Actor):
        reply_errors = (ValueError,)

        def __init__(self) -> None:
            self.count = 0

        async def started(self, ctx: Context) -> None:
            starts.append(1)

        async def receive(self, ctx: Context, message: Any) -> Any:
            self.count += 1
            if message < 0:
                raise ValueError(f"negative: {message}")
            return self.count

    async with open_actor_system() as system:
        ref = await system.spawn("v", Validator)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask(1) == 1
            with pytest.raises(ValueError, match="negative: -1"):
                await ref.ask(-1)
            await ref.tell(-2)  # a reply error on a tell is only logged
            assert await ref.ask(3) == 4  # same incarnation: the counter kept counting
        assert starts == [1]
        assert system.root.statistics().restarts == 0


async def test_an_ordinary_exception_answers_actor_crashed_and_restarts_the_actor() -> None:
    """Any other exception answers the ask with ActorCrashed (cause chained) and restarts."""
    incarnations: list[int] = []

    class Fragile(Actor):
        async def started(self, ctx: Context) -> None:
            incarnations.append(len(incarnations) + 1)
            self.incarnation = incarnations[-1]

        async def receive(self, ctx: Context, message: Any) -> Any:
            if message == "boom":
                raise RuntimeError("kaboom")
            return self.incarnation

    async with open_actor_system() as system:
        ref = await system.spawn("f", Fragile)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("who") == 1
            with pytest.raises(ActorCrashed, match="RuntimeError: kaboom") as info:
                await ref.ask("boom")
            assert isinstance(info.value.__cause__, RuntimeError)
            assert await ref.ask("who") == 2
        assert system.root.statistics().restarts == 1
        assert system.ref("f") is ref


async def test_ref_of_an_unknown_name_raises_actor_not_found() -> None:
    """``system.ref(name)`` raises ActorNotFound naming the actor; ``lookup`` returns None."""
    async with open_actor_system() as system:
        with pytest.raises(ActorNotFound, match="'nobody'"):
            system.ref("nobody")
        assert system.lookup("nobody") is None
        ref = await system.spawn("somebody", Echo)
        assert system.ref("somebody") is ref


async def test_spawning_a_taken_name_raises_name_taken() -> None:
    """A second spawn under a running actor's name raises NameTaken; the first is unharmed."""
    async with open_actor_system() as system:
        ref = await system.spawn("dup", Echo)
        with pytest.raises(NameTaken, match="'dup'"):
            await system.spawn("dup", Echo)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("still here") == "still here"
        assert system.statistics().actors == 1


async def test_spawn_returns_only_after_started_ran() -> None:
    """``spawn`` returns once ``started`` has finished, even if ``started`` awaits things."""
    progress: list[str] = []

    class Slow(Actor):
        async def started(self, ctx: Context) -> None:
            for _ in range(10):
                await trio.lowlevel.checkpoint()
            await settle()
            progress.append("started")

        async def receive(self, ctx: Context, message: Any) -> Any:
            progress.append(message)
            return message

    async with open_actor_system() as system:
        ref = await system.spawn("slow", Slow)
        assert progress == ["started"]
        with trio.fail_after(TIMEOUT):
            await ref.ask("first")
    assert progress == ["started", "first"]


async def test_spawn_accepts_a_class_or_an_instance() -> None:
    """``factory`` may be an Actor subclass (fresh per incarnation) or an Actor instance."""
    instance = Echo()
    async with open_actor_system() as system:
        by_class = await system.spawn("by-class", Echo)
        by_instance = await system.spawn("by-instance", instance)
        with trio.fail_after(TIMEOUT):
            assert await by_class.ask(1) == 1
            assert await by_instance.ask(2) == 2


async def test_leaving_the_system_cancels_every_actor_and_its_tasks() -> None:
    """Leaving ``open_actor_system`` cancels every actor and the tasks in their nurseries."""
    cleaned: list[str] = []
    started = trio.Event()

    class WithBackground(Actor):
        async def started(self, ctx: Context) -> None:
            ctx.nursery.start_soon(self.background, ctx.name)

        async def background(self, name: str) -> None:
            try:
                started.set()
                await trio.sleep_forever()
            finally:
                cleaned.append(f"{name}-background")

        async def receive(self, ctx: Context, message: Any) -> Any:
            try:
                await trio.sleep_forever()
            finally:
                cleaned.append(f"{ctx.name}-handler")

    with trio.fail_after(TIMEOUT):
        async with open_actor_system() as system:
            a = await system.spawn("a", WithBackground)
            b = await system.spawn("b", WithBackground)
            await started.wait()
            a.tell_nowait("block")
            await settle()
        assert sorted(cleaned) == ["a-background", "a-handler", "b-background"]
    assert not a.alive and not b.alive
    assert system.statistics().actors == 0


def test_notices_to_a_stopped_actor_are_counted_but_not_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A peer up/down notice for an actor that stopped (expected whenever links close) is a
    dead letter logged at debug level; an ordinary message to it still warns."""
    dead = actors.DeadLetters()
    mailbox = actors.Mailbox("conn", 10, Overflow.REJECT, dead)
    mailbox.put_system(actors.Delivery("notice queued before the stop"))
    with caplog.at_level("DEBUG", logger="actors.mailbox"):
        mailbox.close()
        mailbox.put_system(actors.Delivery("notice after the stop"))
        assert dead.count == 2
        assert [r.levelname for r in caplog.records] == ["DEBUG", "DEBUG"]
        caplog.clear()
        dead.add("conn", "an ordinary message", "actor stopped")
        assert [r.levelname for r in caplog.records] == ["WARNING"]


async def test_a_notice_given_back_unhandled_stays_a_notice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An actor that stops while handling one peer notice gives back the rest of its
    batch (another link's notice, an ordinary message); closing its mailbox then logs the
    notice at debug level, as if it had never left the system lane, and still warns for
    the ordinary message (a connection actor stopping on its own link's close used to
    warn about every other link's notice)."""
    dead = actors.DeadLetters()
    mailbox = actors.Mailbox("conn", 10, Overflow.REJECT, dead)
    mailbox.put_system(actors.Delivery("its own link is down"))
    mailbox.put_system(actors.Delivery("another link is down"))
    mailbox.put_nowait(actors.Delivery("an ordinary message"))
    batch = await mailbox.get_batch()
    assert [d.message for d in batch][:2] == ["its own link is down", "another link is down"]
    mailbox.give_back(batch[1:])  # it stopped after the first, as handle_batch does
    with caplog.at_level("DEBUG", logger="actors.mailbox"):
        mailbox.close()
    assert dead.count == 2
    levels = {r.getMessage().rsplit(": ", 1)[-1]: r.levelname for r in caplog.records}
    assert levels == {"'another link is down'": "DEBUG", "'an ordinary message'": "WARNING"}
