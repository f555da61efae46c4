"""Tests of links between nodes over the in-memory transport, on a virtual clock.

Every test here takes pytest-trio's ``autojump_clock`` (as an argument: pytest-trio
only uses a clock it finds among the test's arguments): heartbeats, timeouts and
reconnect backoff happen in virtual time, so the assertions about *when* something
happened are exact and cost no wall-clock time. Faults are injected with the memory
transport's ``freeze()`` (a silent peer) and ``sever()`` (a crashed peer).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
from actors import (
    Actor,
    ActorCrashed,
    ActorNotFound,
    ActorSystem,
    AuthenticationError,
    CodecError,
    ConnectFailed,
    Context,
    HandshakeError,
    LinkConfig,
    LinkDown,
    LinkUp,
    MailboxFull,
    MemoryConnection,
    PeerDown,
    RemoteError,
    RemoteRef,
    open_actor_system,
)
from actors._link import handshake

URL = "memory://server"
TIMEOUT = 60.0
INTERVAL = 1.0
HB_TIMEOUT = 3.0
FAST = LinkConfig(
    heartbeat_interval=INTERVAL,
    heartbeat_timeout=HB_TIMEOUT,
    handshake_timeout=2.0,
    reconnect_initial=0.1,
    reconnect_max=2.0,
)


@actors.message("test.link.Greeting")
@attrs.frozen
class Greeting:
    """A registered message type, to check bodies arrive typed on the other node."""

    name: str
    times: int


class Echo(Actor):
    """Answers every message with the message itself."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        return message


class Recorder(Actor):
    """Forwards every message it gets (including LinkUp/LinkDown notices) to a channel."""

    def __init__(self, send: trio.MemorySendChannel[Any]) -> None:
        self.send = send

    async def receive(self, ctx: Context, message: Any) -> Any:
        self.send.send_nowait(message)
        return None


async def spawn_recorder(
    system: ActorSystem, name: str = "recorder"
) -> tuple[actors.LocalRef, trio.MemoryReceiveChannel[Any]]:
    """Spawn a Recorder and return its ref and the channel it forwards to."""
    send, receive = trio.open_memory_channel[Any](math.inf)
    ref = await system.spawn(name, lambda: Recorder(send))
    return ref, receive


async def next_of(receive: trio.MemoryReceiveChannel[Any], kind: type) -> Any:
    """The next recorded item, which must be of type ``kind``."""
    item = await receive.receive()
    assert isinstance(item, kind), f"expected {kind.__name__}, got {item!r}"
    return item


@asynccontextmanager
async def server_and_client(
    url: str = URL, *, server: dict[str, Any] | None = None, client: dict[str, Any] | None = None
) -> AsyncIterator[tuple[ActorSystem, ActorSystem]]:
    """A server node (with an "echo" actor) listening at ``url`` and a client node."""
    async with (
        open_actor_system(link=FAST, role="server", **(server or {})) as server_system,
        open_actor_system(link=FAST, role="client", **(client or {})) as client_system,
    ):
        await server_system.spawn("echo", Echo)
        assert await server_system.listen(url) == url
        yield server_system, client_system


# -- messaging across a link -----------------------------------------------------------------


async def test_remote_ask_and_tell_through_a_peer(autojump_clock: trio.testing.MockClock) -> None:
    """``connect`` returns a Peer whose refs ask and tell the actors of the other node."""
    state: list[Any] = []

    class Store(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            if message == "count":
                return len(state)
            state.append(message)
            return None

    async with server_and_client() as (server, client):
        await server.spawn("store", Store)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            assert peer.connected
            assert (peer.node_id, peer.role, peer.url) == (server.node_id, "server", URL)
            echo = peer.ref("echo")
            assert isinstance(echo, RemoteRef) and echo.node_id == server.node_id
            assert await echo.ask("hello") == "hello"
            assert await echo.ask({"a": [1, 2, b"3"]}) == {"a": [1, 2, b"3"]}
            store = peer.ref("store")
            await store.tell(1)
            store.tell_nowait(2)
            await store.tell(Greeting("x", 3))
            assert await store.ask("count") == 3
        assert state == [1, 2, Greeting("x", 3)]  # the registered type arrived typed
        assert client.peers() == {server.node_id: peer}
        assert client.peer(server.node_id) is peer
        assert set(server.peers()) == {client.node_id}
        assert server.peer(client.node_id).role == "client"
        assert client.statistics().connected_peers == 1
        with pytest.raises(ActorNotFound):
            client.peer("no-such-node")


async def test_sender_of_a_remote_tell_can_be_answered_with_a_tell(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The receiver sees the remote sender as a RemoteRef and can tell it back over the link."""

    class Ponger(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            assert isinstance(ctx.sender, RemoteRef)
            await ctx.sender.tell(("pong", message), sender=ctx.self)

    async with server_and_client() as (server, client):
        await server.spawn("ponger", Ponger)
        inbox, received = await spawn_recorder(client, "inbox")
        senders: list[Any] = []

        class SenderSpy(Recorder):
            async def receive(self, ctx: Context, message: Any) -> Any:
                senders.append(ctx.sender)
                return await super().receive(ctx, message)

        send, spied = trio.open_memory_channel[Any](math.inf)
        spy = await client.spawn("spy", lambda: SenderSpy(send))
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            await peer.ref("ponger").tell("ping", sender=inbox)
            assert await received.receive() == ["pong", "ping"]  # msgpack has no tuples
            await peer.ref("ponger").tell("ping-2", sender=spy)
            assert await spied.receive() == ["pong", "ping-2"]
        [sender] = senders
        assert isinstance(sender, RemoteRef)
        assert (sender.name, sender.node_id) == ("ponger", server.node_id)


async def test_concurrent_asks_are_batched_into_few_frames(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Asks made together leave in far fewer frames than envelopes (one frame per wake-up)."""
    async with server_and_client() as (server, client):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            echo = peer.ref("echo")
            assert await echo.ask("warm-up") == "warm-up"
            link = peer.link
            assert link is not None
            frames, envelopes = link.frames_sent, link.envelopes_sent
            server_link = server.peer(client.node_id).link
            assert server_link is not None
            server_frames = server_link.frames_sent
            results: dict[int, Any] = {}

            async def ask_it(i: int) -> None:
                results[i] = await echo.ask(i)

            async with trio.open_nursery() as nursery:
                for i in range(200):
                    nursery.start_soon(ask_it, i)
        assert results == {i: i for i in range(200)}
        sent_frames = link.frames_sent - frames
        sent_envelopes = link.envelopes_sent - envelopes
        assert sent_envelopes >= 200
        assert sent_frames <= 5, (sent_frames, sent_envelopes)
        assert server_link.frames_sent - server_frames <= 10
        assert server_link.envelopes_received >= 201


async def test_ask_of_an_unknown_remote_actor_raises_actor_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An ask to a name nobody has on the peer raises ActorNotFound naming it."""
    async with server_and_client() as (_server, client):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            with pytest.raises(ActorNotFound, match="'ghost'"):
                await peer.ref("ghost").ask("anyone?")
            assert await peer.ref("echo").ask("still fine") == "still fine"


async def test_tell_to_an_unknown_remote_actor_is_dead_lettered_on_the_receiver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A tell to a missing actor is dead-lettered where it arrived; the link carries on."""
    async with server_and_client() as (server, client):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            await peer.ref("ghost").tell("boo")
            assert await peer.ref("echo").ask("sync") == "sync"
        assert server.dead_letters.count == 1
        to, message, reason = server.dead_letters.recent[-1]
        assert (to, message) == ("ghost", "boo")
        assert "no actor named 'ghost'" in reason


async def test_remote_handler_crash_raises_actor_crashed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that raises answers the remote ask with ActorCrashed; the actor restarts."""

    class Fragile(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            if message == "boom":
                raise RuntimeError("kaboom")
            return message

    async with server_and_client() as (server, client):
        await server.spawn("fragile", Fragile)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            ref = peer.ref("fragile")
            with pytest.raises(ActorCrashed, match="RuntimeError: kaboom"):
                await ref.ask("boom")
            assert await ref.ask("after") == "after"
        assert server.root.statistics().restarts == 1


async def test_remote_reply_error_comes_back_as_remote_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A ``reply_errors`` exception reaches the remote asker as RemoteError with its type name."""

    class Validator(Actor):
        reply_errors = (ValueError, KeyError)

        async def receive(self, ctx: Context, message: Any) -> Any:
            if message < 0:
                raise ValueError(f"{message} is negative")
            return message

    async with server_and_client() as (server, client):
        await server.spawn("validator", Validator)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            with pytest.raises(RemoteError) as info:
                await peer.ref("validator").ask(-3)
            assert info.value.type_name == "ValueError"
            assert info.value.message == "-3 is negative"
            assert str(info.value) == "ValueError: -3 is negative"
            assert await peer.ref("validator").ask(3) == 3
        assert server.root.statistics().restarts == 0


async def test_a_reply_that_cannot_be_encoded_fails_the_ask_with_codec_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """If the answer cannot be encoded, the asker gets a CodecError instead of waiting forever."""

    class Weird(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            return object()

    async with server_and_client() as (server, client):
        await server.spawn("weird", Weird)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            with pytest.raises(CodecError, match="could not be encoded"):
                await peer.ref("weird").ask("x")
            assert await peer.ref("echo").ask("ok") == "ok"


async def test_an_unencodable_message_is_refused_at_send_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """An unregistered attrs message raises CodecError in the sender; nothing is sent."""

    @attrs.frozen
    class Secret:
        value: int

    async with server_and_client() as (_server, client):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            link = peer.link
            assert link is not None
            before = link.envelopes_sent
            with pytest.raises(CodecError, match="not a registered message"):
                await peer.ref("echo").ask(Secret(1))
            with pytest.raises(CodecError):
                await peer.ref("echo").tell(Secret(2))
            assert link.pending == {}
            assert await peer.ref("echo").ask("ok") == "ok"
            assert link.envelopes_sent == before + 1


async def test_remote_tell_to_a_full_mailbox_does_not_block_the_link(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Tells to a full REJECT mailbox are dead-lettered on the receiver; other actors still
    get their messages over the same link, and the sender never blocks."""
    entered = trio.Event()
    gate = trio.Event()
    handled: list[Any] = []

    class Slow(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            handled.append(message)
            if message == 0:
                entered.set()
                await gate.wait()
            return message

    async with server_and_client() as (server, client):
        slow_ref = await server.spawn("slow", Slow, capacity=2, overflow="reject")
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            slow = peer.ref("slow")
            await slow.tell(0)
            await entered.wait()
            for i in range(1, 10):
                await slow.tell(i)
            # Another actor on the same link is served while "slow" is stuck and full.
            for i in range(5):
                assert await peer.ref("echo").ask(i) == i
            assert slow_ref.mailbox.statistics().queued == 2
            with pytest.raises(MailboxFull):
                await slow.ask("one more")
            gate.set()
            assert await slow.ask("sync") == "sync"
        assert handled == [0, 1, 2, "sync"]
        dead = [entry for entry in server.dead_letters.recent if entry[0] == "slow"]
        assert [message for _, message, _ in dead] == list(range(3, 10))
        assert all("full" in reason for _, _, reason in dead)
        assert slow_ref.mailbox.statistics().rejected == 8
        assert client.dead_letters.count == 0


async def test_an_ask_abandoned_by_its_caller_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A remote ask the caller gave up on (its own timeout) is forgotten: the late reply is
    dropped, and the link and later asks are unaffected."""
    gate = trio.Event()

    class Late(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            await gate.wait()
            return message

    async with server_and_client() as (server, client):
        await server.spawn("late", Late)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            link = peer.link
            assert link is not None
            with trio.move_on_after(2.0) as scope:
                await peer.ref("late").ask("too slow")
            assert scope.cancelled_caught
            assert link.pending == {}
            gate.set()
            assert await peer.ref("late").ask("in time") == "in time"
            assert await peer.ref("echo").ask("fine") == "fine"
        assert peer.links_opened == 1 and link.closed is None


async def test_a_full_link_outbox_refuses_tell_nowait_and_makes_tell_wait(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The link's outbox is bounded: ``tell_nowait`` past ``outbox_limit`` raises MailboxFull,
    ``await tell`` waits for the writer to drain it instead."""
    got: list[Any] = []

    class Sink(Actor):
        async def receive(self, ctx: Context, message: Any) -> Any:
            got.append(message)
            return len(got)

    small = attrs.evolve(FAST, outbox_limit=2)
    async with (
        open_actor_system(link=FAST) as server,
        open_actor_system(link=small) as client,
    ):
        await server.spawn("sink", Sink)
        await server.listen(URL)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            sink = peer.ref("sink")
            sink.tell_nowait(1)
            sink.tell_nowait(2)  # no checkpoint yet: the writer has not run
            with pytest.raises(MailboxFull, match="outbox"):
                sink.tell_nowait(3)
            await sink.tell(4)  # waits for room, then goes
            assert await sink.ask("count") == 4
        assert got == [1, 2, 4, "count"]


# -- heartbeats, failures and reconnects --------------------------------------------------------


async def test_a_frozen_peer_is_noticed_by_heartbeat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A silent (frozen) peer is declared down within heartbeat_timeout + heartbeat_interval.

    Pending asks fail with PeerDown, and a peer monitor sees LinkUp then LinkDown.
    """
    async with server_and_client() as (server, client):
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            up = await next_of(events, LinkUp)
            assert up == LinkUp(server.node_id, "server", URL)
            echo = peer.ref("echo")
            assert await echo.ask("before") == "before"
            await trio.sleep(2.5 * INTERVAL)  # idle: only pings flow, and the link stays up
            assert peer.connected and peer.links_opened == 1
            link = peer.link
            assert link is not None and link.frames_received >= 2  # the server's pings

            [server_end] = actors.memory_network().connections(URL)
            server_end.freeze()
            frozen_at = trio.current_time()
            failures: list[BaseException] = []

            async def pending_ask() -> None:
                try:
                    await echo.ask("lost")
                except PeerDown as exc:
                    failures.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(pending_ask)
                down = await next_of(events, LinkDown)
            noticed_after = trio.current_time() - frozen_at
        assert down.node_id == server.node_id
        assert "heartbeat" in down.reason or "no frame" in down.reason
        assert HB_TIMEOUT - INTERVAL <= noticed_after <= HB_TIMEOUT + INTERVAL
        assert len(failures) == 1
        assert link.closed is not None


async def test_monitor_sees_the_link_come_back_after_a_freeze(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After a heartbeat failure the Peer reconnects on a fresh connection and works again."""
    async with server_and_client() as (server, client):
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            await next_of(events, LinkUp)
            actors.memory_network().connections(URL)[0].freeze()
            await next_of(events, LinkDown)
            await next_of(events, LinkUp)
            assert await peer.ref("echo").ask("back") == "back"
        assert peer.links_opened == 2
        client.demonitor_peers(monitor)
        assert server.statistics().connected_peers == 1


async def test_a_severed_link_reconnects_with_backoff_and_the_ref_works_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """After a crash-like close the Peer waits a backoff delay, reconnects, and the same
    RemoteRef answers again."""
    async with server_and_client() as (_server, client):
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            await next_of(events, LinkUp)
            echo = peer.ref("echo")
            assert await echo.ask(1) == 1
            actors.memory_network().connections(URL)[0].sever()
            down = await next_of(events, LinkDown)
            down_at = trio.current_time()
            assert not peer.connected
            assert "connection lost" in down.reason
            await next_of(events, LinkUp)
            waited = trio.current_time() - down_at
            assert await echo.ask(2) == 2
        assert peer.links_opened == 2
        # reconnect_initial = 0.1 with +-50% jitter: a real pause, but a short one.
        assert 0.05 <= waited <= 0.15 + 1e-9


async def test_reconnect_backoff_grows_and_is_capped(
    monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    """While the server is away, attempts back off exponentially (few attempts, not a spin),
    and the delay is capped at ``reconnect_max`` so a returning server is found quickly."""
    network = actors.memory_network()
    attempts: list[float] = []
    real_connect = network.connect

    def counting_connect(url: str) -> Any:
        attempts.append(trio.current_time())
        return real_connect(url)

    monkeypatch.setattr(network, "connect", counting_connect)
    async with open_actor_system(link=FAST) as client:
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            async with open_actor_system(link=FAST) as server:
                await server.listen(URL)
                peer = await client.connect(URL)
                await next_of(events, LinkUp)
            await next_of(events, LinkDown)
            gone_at = trio.current_time()
            attempts.clear()
            await trio.sleep(30.0)
            # Exponential from 0.1 s, capped at 2 s (jitter 0.5x-1.5x): ~12-25 attempts
            # in 30 s. A fixed 0.1 s delay would make ~300.
            assert 8 <= len(attempts) <= 40, attempts
            gaps = [b - a for a, b in itertools.pairwise(attempts)]
            assert max(gaps) <= FAST.reconnect_max * 1.5 + 1e-9
            assert gaps[-1] >= FAST.reconnect_max * 0.5 - 1e-9
            assert attempts[0] - gone_at <= 0.15 + 1e-9
            async with open_actor_system(link=FAST) as server2:
                await server2.spawn("echo", Echo)
                await server2.listen(URL)
                back_at = trio.current_time()
                up = await next_of(events, LinkUp)
                assert trio.current_time() - back_at <= FAST.reconnect_max * 1.5 + 1e-9
                assert up.node_id == server2.node_id
                assert await peer.ref("echo").ask("hi") == "hi"


async def test_a_server_that_comes_back_with_a_new_node_id_is_reconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """If the node behind a URL restarts (new node id), the Peer relinks and re-keys itself.

    While it is away, asks raise PeerDown at once and tells go to dead letters.
    """
    async with open_actor_system(link=FAST) as client:
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            async with open_actor_system(link=FAST) as first:
                await first.spawn("echo", Echo)
                await first.listen(URL)
                peer = await client.connect(URL)
                await next_of(events, LinkUp)
                echo = peer.ref("echo")
                assert await echo.ask("one") == "one"
                first_id = first.node_id
            down = await next_of(events, LinkDown)
            assert down.node_id == first_id

            # Down: an ask fails at once (no virtual time passes), a tell is dead-lettered.
            now = trio.current_time()
            with pytest.raises(PeerDown, match="not connected"):
                await echo.ask("while down")
            assert trio.current_time() == now
            await echo.tell("lost-1")
            echo.tell_nowait("lost-2")
            assert client.dead_letters.count == 2
            assert [m for _, m, _ in client.dead_letters.recent] == ["lost-1", "lost-2"]
            assert all("not connected" in reason for *_, reason in client.dead_letters.recent)
            assert client.statistics().connected_peers == 0

            await trio.sleep(5.0)  # away for a while: the client keeps retrying
            async with open_actor_system(link=FAST) as second:
                await second.spawn("echo", Echo)
                await second.listen(URL)
                up = await next_of(events, LinkUp)
                assert up.node_id == second.node_id != first_id
                assert await echo.ask("two") == "two"
                assert peer.node_id == second.node_id
                assert echo.node_id == second.node_id
                assert client.peers() == {second.node_id: peer}


async def test_without_reconnect_a_dropped_link_stays_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With ``reconnect=False`` a severed link is not re-opened; the Peer stays down."""
    async with server_and_client() as (_server, client):
        monitor, events = await spawn_recorder(client, "monitor")
        client.monitor_peers(monitor)
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL, reconnect=False)
            await next_of(events, LinkUp)
            actors.memory_network().connections(URL)[0].sever()
            await next_of(events, LinkDown)
            await trio.sleep(10.0)
        assert not peer.connected
        assert peer.links_opened == 1
        assert events.statistics().current_buffer_used == 0
        with pytest.raises(PeerDown):
            await peer.ref("echo").ask("anyone?")


async def test_connect_waits_for_a_server_that_is_not_up_yet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``connect`` retries with backoff until the server listens (the caller owns the timeout)."""
    async with open_actor_system(link=FAST) as client, open_actor_system(link=FAST) as server:
        await server.spawn("echo", Echo)
        result: list[actors.Peer] = []
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:

                async def connect() -> None:
                    result.append(await client.connect(URL))

                nursery.start_soon(connect)
                await trio.sleep(3.0)
                assert not result
                await server.listen(URL)
            assert await result[0].ref("echo").ask("late") == "late"


async def test_connect_with_nobody_listening_and_no_reconnect_raises_connect_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``connect(reconnect=False)`` to an address with no listener raises ConnectFailed."""
    async with open_actor_system(link=FAST) as client:
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectFailed, match="memory://nowhere"):
            await client.connect("memory://nowhere", reconnect=False)
        assert client.peers() == {}


async def test_listening_twice_on_one_url_fails(autojump_clock: trio.testing.MockClock) -> None:
    """A second listener at a memory URL that is in use raises OSError."""
    async with open_actor_system() as a:
        await a.listen(URL)
        with pytest.raises(OSError, match="in use"):
            await a.listen(URL)


async def test_unsupported_url_schemes_are_refused(autojump_clock: trio.testing.MockClock) -> None:
    """Only ws, wss and memory URLs are understood."""
    async with open_actor_system() as a:
        with pytest.raises(ValueError, match="unsupported URL"):
            await a.connect("http://example.invalid")


# -- handshakes ---------------------------------------------------------------------------------


async def test_cluster_mismatch_is_refused_with_code_4002(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Nodes of different clusters do not link: HandshakeError with close code 4002."""
    async with server_and_client(server={"cluster": "blue"}, client={"cluster": "green"}) as (
        server,
        client,
    ):
        with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError) as info:
            await client.connect(URL)
        assert info.value.code == 4002
        assert "cluster mismatch" in str(info.value)
        assert client.peers() == {} and server.peers() == {}


async def test_a_node_cannot_link_to_itself(autojump_clock: trio.testing.MockClock) -> None:
    """Connecting to one's own listener is refused as a protocol error (4000)."""
    async with open_actor_system(link=FAST) as system:
        await system.listen(URL)
        with trio.fail_after(TIMEOUT), pytest.raises(HandshakeError, match="itself") as info:
            await system.connect(URL)
        assert info.value.code == 4000


async def test_nodes_with_the_same_secret_link(autojump_clock: trio.testing.MockClock) -> None:
    """With the same cluster secret on both nodes the link comes up and works."""
    secret = {"secret": b"s3cret"}
    async with server_and_client(server=secret, client=secret) as (_server, client):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(URL)
            assert await peer.ref("echo").ask("authenticated") == "authenticated"


async def test_a_wrong_secret_is_refused_with_authentication_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A client with the wrong secret gets AuthenticationError (4001) from ``connect``."""
    async with server_and_client(server={"secret": b"right"}, client={"secret": b"wrong"}) as (
        server,
        client,
    ):
        with trio.fail_after(TIMEOUT), pytest.raises(AuthenticationError) as info:
            await client.connect(URL)
        assert info.value.code == 4001
        assert "secret" in str(info.value)
        assert server.peers() == {}


async def handshake_both(
    a: ActorSystem, b: ActorSystem
) -> tuple[actors.Hello | BaseException, actors.Hello | BaseException]:
    """Run the handshake of ``a`` and ``b`` against each other; return each side's outcome."""
    end_a, end_b = MemoryConnection.pair("a", "b")
    outcomes: dict[str, Any] = {}

    async def run(system: ActorSystem, end: MemoryConnection, key: str) -> None:
        try:
            outcomes[key] = await handshake(system, end)
        except actors.LinkError as exc:
            outcomes[key] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, a, end_a, "a")
        nursery.start_soon(run, b, end_b, "b")
    return outcomes["a"], outcomes["b"]


async def test_a_wrong_secret_fails_the_handshake_on_both_sides(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Both nodes of a wrong-secret handshake raise AuthenticationError with code 4001."""
    async with (
        open_actor_system(secret=b"one") as a,
        open_actor_system(secret=b"two") as b,
    ):
        with trio.fail_after(TIMEOUT):
            got_a, got_b = await handshake_both(a, b)
    for outcome in (got_a, got_b):
        assert isinstance(outcome, AuthenticationError), outcome
        assert outcome.code == 4001


async def test_matching_secrets_pass_the_handshake_on_both_sides(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The same handshake with matching secrets returns each side the other's hello."""
    async with (
        open_actor_system(secret=b"same", role="a") as a,
        open_actor_system(secret=b"same", role="b") as b,
    ):
        with trio.fail_after(TIMEOUT):
            got_a, got_b = await handshake_both(a, b)
    assert isinstance(got_a, actors.Hello) and isinstance(got_b, actors.Hello)
    assert (got_a.node_id, got_a.role, got_a.auth) == (b.node_id, "b", True)
    assert (got_b.node_id, got_b.role, got_b.auth) == (a.node_id, "a", True)


@pytest.mark.parametrize("secret_side", ["server", "client"])
async def test_a_secret_on_one_side_only_is_an_authentication_error(
    secret_side: str, autojump_clock: trio.testing.MockClock
) -> None:
    """If only one node has a secret, both refuse, and the error says the secret is missing."""
    with_secret = {"secret": b"only-me"}
    server_opts = with_secret if secret_side == "server" else {}
    client_opts = with_secret if secret_side == "client" else {}
    async with server_and_client(server=server_opts, client=client_opts) as (server, client):
        with trio.fail_after(TIMEOUT), pytest.raises(AuthenticationError) as info:
            await client.connect(URL)
        assert info.value.code == 4001
        if secret_side == "server":
            assert "requires the cluster secret" in str(info.value)
        else:
            assert "has no cluster secret" in str(info.value)
        got_server, got_client = await handshake_both(server, client)
        assert isinstance(got_server, AuthenticationError)
        assert isinstance(got_client, AuthenticationError)
        for outcome in (got_server, got_client):
            assert "secret" in str(outcome)


async def test_a_server_forgets_a_client_peer_once_its_link_is_gone(autojump_clock: Any) -> None:
    """Accepted peers are dropped when their link closes: no dead Peer per past client."""
    send, receive = trio.open_memory_channel[Any](100)

    class Watcher(Actor):
        async def receive(self, ctx: Any, message: Any) -> Any:
            send.send_nowait(message)

    async with open_actor_system(role="server") as server:
        server.monitor_peers(await server.spawn("watcher", Watcher))
        url = await server.listen("memory://forget-me")
        for _ in range(3):
            async with open_actor_system(role="client") as client:
                await client.connect(url)
            with trio.fail_after(5):
                while not isinstance(await receive.receive(), LinkDown):
                    pass
            assert server.peers() == {}
        assert server.statistics().peers == 0
        server.nursery.cancel_scope.cancel()
