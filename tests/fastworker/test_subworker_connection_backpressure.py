"""Connection actors and reports wait for room in a full mailbox instead of losing messages.

Both ways results reach the control plane (a subworker's through its SubworkerConnection,
the in-process executor's through ``local_reporter``), and a client connection's
unsubscribing when its link goes.
"""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

import actors
from fastworker._client_connection import ClientConnection
from fastworker._control_plane import LOCAL_WORKER
from fastworker._control_plane_node import local_reporter
from fastworker._messages import Completed, Outcome
from fastworker._model import TaskStatus
from fastworker._protocol import EventSubscription, Unsubscribe, WorkerCompleted, WorkerJoined
from fastworker._subworker_connection import SubworkerConnection


class _SlowControlPlane(actors.Actor):
    """Holds its first message until ``release`` is set; records every message."""

    def __init__(self, release: trio.Event, seen: list[Any], completed: int) -> None:
        self.release = release
        self.seen = seen
        self.holding = trio.Event()
        self.got = trio.Event()
        self.completed = completed

    async def receive(self, ctx: actors.Context, message: Any) -> Any:
        if not self.seen:
            self.holding.set()
            await self.release.wait()
        self.seen.append(message)
        if sum(isinstance(m, WorkerCompleted) for m in self.seen) == self.completed:
            self.got.set()
        return None


class _Recorder(actors.Actor):
    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen
        self.got = trio.Event()

    async def receive(self, ctx: actors.Context, message: Any) -> Any:
        self.seen.append(message)
        self.got.set()
        return None


class _Sink(actors.Actor):
    async def receive(self, ctx: actors.Context, message: Any) -> Any:
        return None


class _LocalPeer:
    """Just enough of a Peer: connected, and refs resolve on the local system."""

    def __init__(self, system: actors.ActorSystem) -> None:
        self.system = system
        self.node_id = "remote-node-0000"
        self.connected = True

    def ref(self, name: str) -> actors.ActorRef:
        return self.system.ref(name)


async def test_completed_waits_for_room_in_a_full_control_plane_mailbox() -> None:
    """Outcomes a subworker reports while the control plane's mailbox is full reach it once
    there is room: the connection actor waits (it used to crash on MailboxFull, losing the
    outcomes and leaving the worker's slots and in-flight tasks held for ever)."""
    release = trio.Event()
    seen: list[Any] = []
    slow = _SlowControlPlane(release, seen, 1)
    async with actors.open_actor_system() as system:
        cp = await system.spawn("cp", lambda: slow, capacity=1)
        await system.spawn("executor", _Sink)
        conn = await system.spawn(
            "worker/w1",
            lambda: SubworkerConnection(
                _LocalPeer(system),
                "w1",
                "executor",
                cp,
                2,  # type: ignore[arg-type]
            ),
            restart=actors.Restart.TEMPORARY,
        )
        # Once the control plane holds WorkerJoined, fill its one-message mailbox.
        with trio.fail_after(10):
            await slow.holding.wait()
        cp.tell_nowait("filler")
        outcome = Outcome("t1", TaskStatus.SUCCESS.value, 1, b"\x01", name="job")
        await conn.tell(Completed([outcome], 1))
        await trio.testing.wait_all_tasks_blocked()  # it handled Completed: waits for room
        assert system.lookup("worker/w1") is not None, "the connection actor stopped"
        release.set()
        with trio.fail_after(10):
            await slow.got.wait()
    completed = [m for m in seen if isinstance(m, WorkerCompleted)]
    assert isinstance(seen[0], WorkerJoined)
    assert seen[1] == "filler"
    assert completed == [WorkerCompleted("w1", [outcome], 1, [])]


async def test_local_executor_outcomes_wait_for_room_in_a_full_control_plane_mailbox() -> None:
    """The in-process executor's reports reach a control plane whose mailbox was full, in
    order, once it has room (they used to be logged and dropped, holding their tasks and
    the local worker's slots for ever)."""
    release = trio.Event()
    seen: list[Any] = []
    slow = _SlowControlPlane(release, seen, 2)
    async with actors.open_actor_system() as system:
        cp = await system.spawn("cp", lambda: slow, capacity=1)
        cp.tell_nowait("first")
        with trio.fail_after(10):
            await slow.holding.wait()
        cp.tell_nowait("filler")  # the mailbox is full now
        report = local_reporter(cp, system.nursery)
        one = Outcome("t1", TaskStatus.SUCCESS.value, 1, b"\x01", name="job")
        two = Outcome("t2", TaskStatus.SUCCESS.value, 1, b"\x02", name="job")
        report([one], 1)
        report([two], 2)
        release.set()
        with trio.fail_after(10):
            await slow.got.wait()
    assert seen[:2] == ["first", "filler"]
    assert seen[2:] == [
        WorkerCompleted(LOCAL_WORKER, [one], 1, []),
        WorkerCompleted(LOCAL_WORKER, [two], 2, []),
    ]


async def test_client_connection_unsubscribes_through_a_full_cache_mailbox() -> None:
    """A client's link going down unsubscribes it from the result cache and the control
    plane's events even while the cache's mailbox is full (the connection used to crash
    on MailboxFull first, so the gone client stayed subscribed to both)."""
    release = trio.Event()
    cache_seen: list[Any] = []
    cp_seen: list[Any] = []
    slow_cache = _SlowControlPlane(release, cache_seen, 0)
    recorder = _Recorder(cp_seen)
    async with actors.open_actor_system() as system:
        cache = await system.spawn("cache", lambda: slow_cache, capacity=1)
        cp = await system.spawn("cp", lambda: recorder)
        inbox = await system.spawn("inbox", _Sink)
        peer = _LocalPeer(system)
        peer.connected = False
        conn = await system.spawn(
            "client/c1",
            lambda: ClientConnection(peer, "inbox", cp, cache),  # type: ignore[arg-type]
            restart=actors.Restart.TEMPORARY,
        )
        cache.tell_nowait("first")
        with trio.fail_after(10):
            await slow_cache.holding.wait()
        cache.tell_nowait("filler")  # the cache's mailbox is full now
        await conn.tell(actors.LinkDown(peer.node_id, "gone"))
        await trio.testing.wait_all_tasks_blocked()
        assert system.lookup("client/c1") is not None, "the connection actor crashed"
        release.set()
        with trio.fail_after(10):
            await recorder.got.wait()
        await trio.testing.wait_all_tasks_blocked()
    assert cache_seen == ["first", "filler", Unsubscribe(inbox)]
    assert cp_seen == [EventSubscription(inbox, False)]
