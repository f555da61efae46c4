"""Tests of supervision: restart policies, restart intensity and escalation.

Tests that depend on the restart window run on pytest-trio's ``autojump_clock``, so
"five seconds later" costs no wall-clock time and is exact.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors import (
    Actor,
    ActorCrashed,
    ActorGone,
    Context,
    EscalationError,
    Restart,
    Supervisor,
    open_actor_system,
)

TIMEOUT = 10.0  # wall-clock seconds on the real clock, virtual ones under autojump


async def settle() -> None:
    """Wait until every task is blocked: whatever was going to happen has happened."""
    await trio.testing.wait_all_tasks_blocked()


class Counted(Actor):
    """Counts its incarnations in ``log``; "crash" raises, "stop" stops normally.

    Any other message is answered with ``(incarnation, message)``.
    """

    def __init__(self, log: list[int]) -> None:
        self.log = log

    async def started(self, ctx: Context) -> None:
        self.log.append(len(self.log) + 1)
        self.incarnation = self.log[-1]

    async def receive(self, ctx: Context, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError(f"crash in incarnation {self.incarnation}")
        if message == "stop":
            ctx.stop()
            return "stopping"
        return (self.incarnation, message)


def counted(log: list[int]) -> Any:
    """A factory making a fresh Counted per incarnation, all sharing ``log``."""
    return lambda: Counted(log)


async def test_permanent_child_is_restarted_and_serves_the_same_ref() -> None:
    """A crashed permanent child gets a new incarnation that answers through the old ref."""
    log: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("p", counted(log), restart=Restart.PERMANENT)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("a") == (1, "a")
            with pytest.raises(ActorCrashed):
                await ref.ask("crash")
            assert await ref.ask("b") == (2, "b")
        assert log == [1, 2]
        assert ref.alive and system.ref("p") is ref
        assert system.root.statistics().restarts == 1


async def test_permanent_child_is_restarted_after_a_normal_stop() -> None:
    """PERMANENT means always: even a child that stops itself normally comes back."""
    log: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("p", counted(log), restart="permanent")
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("stop") == "stopping"
            assert await ref.ask("x") == (2, "x")
        assert log == [1, 2]


async def test_transient_child_that_stops_normally_is_not_restarted() -> None:
    """A TRANSIENT child that returns normally (``ctx.stop()``) stays stopped."""
    log: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("t", counted(log), restart=Restart.TRANSIENT)
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("stop") == "stopping"
            await settle()
        assert log == [1]
        assert not ref.alive
        assert system.lookup("t") is None
        assert "t" not in system.root.statistics().children
        with pytest.raises(ActorGone):
            await ref.ask("anyone?")


async def test_transient_child_that_crashes_is_restarted() -> None:
    """A TRANSIENT child is restarted after a crash."""
    log: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("t", counted(log), restart="transient")
        with trio.fail_after(TIMEOUT):
            with pytest.raises(ActorCrashed):
                await ref.ask("crash")
            assert await ref.ask("x") == (2, "x")
        assert log == [1, 2]
        assert system.root.statistics().children == ("t",)


@pytest.mark.parametrize("how", ["crash", "stop"])
async def test_temporary_child_is_never_restarted(how: str) -> None:
    """A TEMPORARY child is not restarted, whether it crashed or stopped normally."""
    log: list[int] = []
    async with open_actor_system() as system:
        ref = await system.spawn("tmp", counted(log), restart=Restart.TEMPORARY)
        with trio.fail_after(TIMEOUT):
            ref.tell_nowait(how)
            await settle()
        assert log == [1]
        assert not ref.alive
        assert system.lookup("tmp") is None
        assert system.root.statistics().restarts == 0
        # The name is free again.
        again = await system.spawn("tmp", counted(log))
        assert again is not ref
        assert log == [1, 2]


async def test_crash_in_a_background_task_crashes_and_restarts_the_actor() -> None:
    """An exception in a task of ``ctx.nursery`` crashes the incarnation like a receive error."""
    log: list[int] = []
    boom = trio.Event()

    class WithBackground(Counted):
        async def started(self, ctx: Context) -> None:
            await super().started(ctx)
            if self.incarnation == 1:
                ctx.nursery.start_soon(self.background)

        async def background(self) -> None:
            await boom.wait()
            raise OSError("background failure")

    async with open_actor_system() as system:
        ref = await system.spawn("bg", lambda: WithBackground(log))
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("x") == (1, "x")
            boom.set()
            await settle()
            assert await ref.ask("y") == (2, "y")
        assert system.root.statistics().restarts == 1


async def test_a_crash_cancels_the_background_tasks_of_the_crashed_incarnation() -> None:
    """Tasks an incarnation started in ``ctx.nursery`` do not outlive it after a crash."""
    log: list[int] = []
    cancelled: list[int] = []
    running = trio.Event()

    class WithBackground(Counted):
        async def started(self, ctx: Context) -> None:
            await super().started(ctx)
            ctx.nursery.start_soon(self.background)

        async def background(self) -> None:
            try:
                running.set()
                await trio.sleep_forever()
            finally:
                cancelled.append(self.incarnation)

    async with open_actor_system() as system:
        ref = await system.spawn("bg", lambda: WithBackground(log))
        with trio.fail_after(TIMEOUT):
            await running.wait()
            with pytest.raises(ActorCrashed):
                await ref.ask("crash")
            assert await ref.ask("x") == (2, "x")
        assert cancelled == [1]
    assert cancelled == [1, 2]


async def test_crash_loop_escalates_and_cancels_siblings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """More than ``max_restarts`` restarts within the window escalates out of the system.

    ``open_actor_system`` raises a group holding EscalationError, whose ``__cause__`` is
    the child's last error, and the sibling actors were cancelled on the way out.
    """
    log: list[int] = []
    sibling_cancelled = trio.Event()

    class Sibling(Actor):
        async def started(self, ctx: Context) -> None:
            ctx.nursery.start_soon(self.forever)

        async def forever(self) -> None:
            try:
                await trio.sleep_forever()
            finally:
                sibling_cancelled.set()

    with (
        trio.fail_after(TIMEOUT),
        pytest.RaisesGroup(EscalationError, flatten_subgroups=True) as info,
    ):
        async with open_actor_system(max_restarts=2, restart_window=5.0) as system:
            await system.spawn("sibling", Sibling)
            ref = await system.spawn("looper", counted(log))
            for _ in range(3):
                ref.tell_nowait("crash")
                await trio.sleep(1.0)  # three crashes within 5 s: one too many
            await trio.sleep_forever()  # cancelled by the escalation
    escalation = info.value.exceptions[0]
    while isinstance(escalation, BaseExceptionGroup):
        escalation = escalation.exceptions[0]
    assert isinstance(escalation, EscalationError)
    assert "'looper'" in str(escalation)
    assert isinstance(escalation.__cause__, RuntimeError)
    assert str(escalation.__cause__) == "crash in incarnation 3"
    assert sibling_cancelled.is_set()
    assert log == [1, 2, 3]
    assert trio.current_time() == pytest.approx(2.0)


async def test_restarts_spread_over_more_than_the_window_do_not_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Old restarts age out of the window: crashes 3 s apart never count more than 2 at once."""
    log: list[int] = []
    async with open_actor_system(max_restarts=2, restart_window=5.0) as system:
        ref = await system.spawn("steady", counted(log))
        with trio.fail_after(60):  # virtual seconds
            for _ in range(6):
                ref.tell_nowait("crash")
                await trio.sleep(3.0)
            assert await ref.ask("alive?") == (7, "alive?")
        assert system.root.statistics().restarts == 6


async def test_restart_window_counts_at_exactly_the_limit_as_allowed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Exactly ``max_restarts`` restarts inside the window is still fine (only more escalates)."""
    log: list[int] = []
    async with open_actor_system(max_restarts=2, restart_window=5.0) as system:
        ref = await system.spawn("edge", counted(log))
        with trio.fail_after(TIMEOUT):
            for _ in range(2):
                ref.tell_nowait("crash")
                await trio.sleep(0.5)
            assert await ref.ask("ok") == (3, "ok")


async def test_messages_queued_during_a_crash_are_handled_by_the_new_incarnation() -> None:
    """Asks that queue up while the actor is busy crashing are answered by the next incarnation."""
    log: list[int] = []
    entered = trio.Event()
    gate = trio.Event()

    class SlowCrash(Counted):
        async def receive(self, ctx: Context, message: Any) -> Any:
            if message == "slow-crash":
                entered.set()
                await gate.wait()
                raise RuntimeError("slow crash")
            return await super().receive(ctx, message)

    async with open_actor_system() as system:
        ref = await system.spawn("q", lambda: SlowCrash(log))
        results: list[Any] = []

        async def ask_it(message: str) -> None:
            results.append(await ref.ask(message))

        with trio.fail_after(TIMEOUT):
            ref.tell_nowait("slow-crash")
            await entered.wait()
            async with trio.open_nursery() as nursery:
                for message in ("m1", "m2", "m3"):
                    nursery.start_soon(ask_it, message)
                await settle()
                assert ref.mailbox.statistics().queued == 3
                gate.set()
        assert sorted(results) == [(2, "m1"), (2, "m2"), (2, "m3")]
        assert log == [1, 2]


async def test_messages_in_the_same_batch_as_a_crash_are_given_back() -> None:
    """Messages taken in the crashing batch but not yet handled go back, in order."""
    log: list[int] = []
    seen: list[Any] = []

    class Recording(Counted):
        async def receive(self, ctx: Context, message: Any) -> Any:
            seen.append((self.incarnation, message))
            return await super().receive(ctx, message)

    async with open_actor_system() as system:
        ref = await system.spawn("r", lambda: Recording(log))
        with trio.fail_after(TIMEOUT):
            for message in ("a", "crash", "b", "c"):
                ref.tell_nowait(message)  # one batch of four
            assert await ref.ask("d") == (2, "d")
    assert seen == [(1, "a"), (1, "crash"), (2, "b"), (2, "c"), (2, "d")]


async def test_failing_started_on_first_spawn_raises_from_spawn() -> None:
    """If ``started`` fails the first time, ``spawn`` raises that error and frees the name."""

    class Broken(Actor):
        async def started(self, ctx: Context) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError("cannot start: no config")

    async with open_actor_system() as system:
        with trio.fail_after(TIMEOUT), pytest.raises(ValueError, match="no config"):
            await system.spawn("broken", Broken)
        assert system.lookup("broken") is None
        assert system.root.statistics().restarts == 0
        # The system is still up and the name can be used again.
        log: list[int] = []
        ref = await system.spawn("broken", counted(log))
        with trio.fail_after(TIMEOUT):
            assert await ref.ask("hi") == (1, "hi")


async def test_a_nested_supervisor_escalates_to_its_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A Supervisor run in a user nursery raises EscalationError into that nursery."""
    log: list[int] = []
    async with open_actor_system() as system:
        with (
            trio.fail_after(TIMEOUT),
            pytest.RaisesGroup(EscalationError, flatten_subgroups=True),
        ):
            async with trio.open_nursery() as nursery:
                sup = Supervisor(system, "sub", max_restarts=0, within=1.0)
                await nursery.start(sup.run)
                ref = await sup.spawn("child", counted(log))
                ref.tell_nowait("crash")
                await trio.sleep_forever()
        assert log == [1]
        assert system.lookup("child") is None


def test_supervisor_rejects_bad_intensity_settings() -> None:
    """Negative ``max_restarts`` or a non-positive window is refused."""
    with pytest.raises(ValueError):
        Supervisor(None, "x", max_restarts=-1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Supervisor(None, "x", within=0)  # type: ignore[arg-type]
