"""Tests of links over real loopback websockets, and of a server facing hostile input.

These use real sockets on 127.0.0.1 (port 0: the OS picks a free one) and so trio's
real clock; every wait is for an event under ``trio.fail_after``. Misbehaving clients
are written with trio-websocket directly (support.link's RawClient; raw TCP / wsproto
for connections that die mid-handshake) and speak the link protocol by hand. In every
case a well-behaved client linked to the same server at the same time must keep
getting correct answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
import trio
from support import free_tcp_port
from support.link import make_hello, raw_client
from trio_websocket import CloseReason
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Request

import actors
from actors import (
    PROTOCOL_VERSION,
    Actor,
    ActorSystem,
    Codec,
    ConnectFailed,
    Context,
    Kind,
    LinkConfig,
    MessageTooLarge,
    Peer,
    open_actor_system,
)
from actors._link import Ping, Proof

TIMEOUT = 10.0
SMALL = 64 * 1024
# A node shutting down waits up to disconnect_timeout for each outgoing link's close
# handshake (its websocket reader is cancelled with it, so the reply is never read):
# keep that short so the suite stays fast. Closes still carry their code and reason.
QUICK_CLOSE = 0.2
QUICK = LinkConfig(disconnect_timeout=QUICK_CLOSE)
SECRET = b"websocket-secret"


@actors.message("test.ws.Order")
@attrs.frozen
class Order:
    """A registered message type with a typed field, to send bodies of the wrong type."""

    item: str
    quantity: int


class Doubler(Actor):
    """Answers ``x`` with ``x * 2`` (an Order with its quantity doubled)."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        if isinstance(message, Order):
            return Order(message.item, message.quantity * 2)
        return message * 2


# -- a well-behaved client next to a misbehaving one --------------------------------------------


@attrs.define
class Server:
    """A listening node plus a well-behaved client already linked to it."""

    system: ActorSystem
    url: str
    good: Peer
    answered: int = 0

    async def check_good_client(self, rounds: int = 20) -> None:
        """The good client still gets correct answers on its original link."""
        calc = self.good.ref("calc")
        for i in range(rounds):
            assert await calc.ask(i) == 2 * i
        assert await calc.ask(Order("pen", 21)) == Order("pen", 42)
        assert self.good.connected and self.good.links_opened == 1

    async def keep_asking(self, *, task_status: trio.TaskStatus[None]) -> None:
        """Ask over the good link, paced, until cancelled; every answer must be right."""
        calc = self.good.ref("calc")
        task_status.started()
        i = 0
        while True:
            assert await calc.ask(i) == 2 * i
            self.answered += 1
            i += 1
            await trio.sleep(0.002)


@asynccontextmanager
async def serving(*, secret: bytes | None = None, **link_options: Any) -> AsyncIterator[Server]:
    """A server (with a "calc" Doubler) on ws://127.0.0.1:0 and a good client linked to it."""
    link = LinkConfig(**{"disconnect_timeout": QUICK_CLOSE, **link_options})
    async with (
        open_actor_system(secret=secret, link=link, role="server") as system,
        open_actor_system(secret=secret, link=QUICK, role="good-client") as client,
    ):
        await system.spawn("calc", Doubler)
        url = await system.listen("ws://127.0.0.1:0")
        assert url.startswith("ws://127.0.0.1:") and not url.endswith(":0")
        with trio.fail_after(TIMEOUT):
            good = await client.connect(url)
        server = Server(system, url, good)
        with trio.fail_after(TIMEOUT):
            await server.check_good_client(rounds=3)
        yield server


async def alongside_good_client(server: Server, bad: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``bad`` while the good client keeps asking; afterwards it must still be served."""
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.keep_asking)
            result = await bad()
            nursery.cancel_scope.cancel()
        await server.check_good_client()
    return result


# -- the happy path -------------------------------------------------------------------------------


async def test_remote_ask_over_a_real_websocket() -> None:
    """Two nodes link over ws://127.0.0.1 and ask, tell and reply across it."""
    async with serving() as server:
        calc = server.good.ref("calc")
        with trio.fail_after(TIMEOUT):
            assert await calc.ask(21) == 42
            assert await calc.ask("ab") == "abab"
            assert await calc.ask(Order("cup", 2)) == Order("cup", 4)
            await calc.tell(1)
        assert server.good.node_id == server.system.node_id
        assert server.good.role == "server"
        link = server.good.link
        assert link is not None and link.frames_sent >= 1 and link.frames_received >= 1


async def test_a_link_with_a_secret_over_websockets() -> None:
    """A node with the cluster secret links and is answered over a real socket."""
    async with serving(secret=SECRET) as server:
        with trio.fail_after(TIMEOUT):
            assert await server.good.ref("calc").ask(5) == 10


# -- bad input during the handshake: a close with a 4000-range code and a reason -----------------

BAD_FIRST_FRAMES = [
    pytest.param(b"\xc1 this is not msgpack", "not valid msgpack", id="garbage-bytes"),
    pytest.param("hello?", "text frames are not accepted", id="text-frame"),
    pytest.param(b"\x93\x01", "not valid msgpack", id="truncated-array"),
    pytest.param(msgpack.packb({"hello": 1}), "must be a msgpack array", id="not-an-array"),
    pytest.param(msgpack.packb([[4, "", None]]), "malformed envelope", id="malformed-envelope"),
    pytest.param(
        Codec().encode_frame([(Kind.TELL, "calc", None, 0, 1)]),
        "expected one Hello control message",
        id="message-before-hello",
    ),
    pytest.param(
        Codec().encode_frame([(Kind.CONTROL, "", None, 0, Ping())]),
        "expected Hello, got Ping",
        id="ping-before-hello",
    ),
    pytest.param(
        b"\x91" + msgpack.packb([4, "", None, 0, "actors.Hello", {"node_id": 1}]),
        "bad body for message type 'actors.Hello'",
        id="hello-with-wrong-field-types",
    ),
]


@pytest.mark.parametrize(("frame", "reason"), BAD_FIRST_FRAMES)
async def test_a_bad_first_frame_is_closed_with_4000_and_a_reason(
    frame: bytes | str, reason: str
) -> None:
    """A first frame that is not a hello closes the connection with 4000 and says why."""
    async with serving() as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.send(frame)
                return await raw.closed()

        close = await alongside_good_client(server, bad)
        # The refused client never became a peer; the good one still is.
        assert set(server.system.peers()) == {server.good.system.node_id}
    assert close.code == 4000
    assert close.reason is not None and reason in close.reason


async def test_a_hello_with_the_wrong_version_is_closed_with_4000() -> None:
    """A hello of another protocol version is refused with 4000 naming both versions."""
    async with serving() as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake(version=PROTOCOL_VERSION + 1)
                return await raw.closed()

        close = await alongside_good_client(server, bad)
    assert close.code == 4000
    assert close.reason is not None and "protocol version mismatch" in close.reason
    assert f"the peer {PROTOCOL_VERSION + 1}" in close.reason


async def test_a_hello_from_another_cluster_is_closed_with_4002() -> None:
    """A hello naming another cluster is refused with 4002."""
    async with serving() as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake(cluster="elsewhere")
                return await raw.closed()

        close = await alongside_good_client(server, bad)
    assert close.code == 4002
    assert close.reason is not None and "cluster mismatch" in close.reason


async def test_a_bad_proof_is_closed_with_4001() -> None:
    """With a secret set, a client whose proof is wrong is refused with 4001."""
    async with serving(secret=SECRET) as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake(auth=True)
                assert raw.server_hello is not None and raw.server_hello.auth
                server_proof = await raw.receive_control(Proof)
                assert len(server_proof.mac) == 32
                await raw.send_envelope(Kind.CONTROL, "", 0, Proof(b"\x00" * 32))
                return await raw.closed()

        close = await alongside_good_client(server, bad)
    assert close.code == 4001
    assert close.reason is not None and "authentication failed" in close.reason


async def test_a_client_without_the_secret_is_closed_with_4001() -> None:
    """With a secret set, a hello that does not offer authentication is refused with 4001."""
    async with serving(secret=SECRET) as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake(auth=False)
                return await raw.closed()

        close = await alongside_good_client(server, bad)
    assert close.code == 4001
    assert close.reason is not None and "no cluster secret" in close.reason


async def test_a_silent_client_is_closed_when_the_handshake_times_out() -> None:
    """A client that never says hello is closed with 4000 after ``handshake_timeout``."""
    async with serving(handshake_timeout=0.3) as server:

        async def bad() -> tuple[CloseReason, float]:
            start = trio.current_time()  # before connecting: the server's timer starts later
            async with raw_client(server.url) as raw:
                close = await raw.closed()
                return close, trio.current_time() - start

        close, waited = await alongside_good_client(server, bad)
    assert close.code == 4000
    assert close.reason == "handshake timed out"
    assert 0.3 <= waited < TIMEOUT


# -- bad frames after the hello: a Notice or FAIL reply, and the link carries on ------------------


BAD_FRAMES_AFTER_HELLO = [
    pytest.param(b"\xc1 garbage", "frame refused: frame is not valid msgpack", id="garbage-bytes"),
    pytest.param("text", "frame refused: text frames are not accepted", id="text-frame"),
    pytest.param(b"\x93\x01", "frame refused: frame is not valid msgpack", id="truncated-array"),
    pytest.param(msgpack.packb("x"), "frame refused: frame must be a msgpack array", id="str"),
    pytest.param(
        msgpack.packb([[1, "calc", None]]), "frame refused: malformed envelope", id="malformed"
    ),
    pytest.param(
        msgpack.packb([[9, "calc", None, 0, "", 1]]), "unknown envelope kind 9", id="bad-kind"
    ),
    pytest.param(
        msgpack.packb([[Kind.TELL, "calc", None, 0, "test.ws.Order", {"item": "x"}]]),
        "message 'test.ws.Order' to 'calc' refused: bad body",
        id="tell-with-bad-body",
    ),
    pytest.param(
        msgpack.packb([[Kind.TELL, "calc", None, 0, "no.such.Type", {}]]),
        "unknown message type 'no.such.Type'",
        id="tell-of-unknown-type",
    ),
    pytest.param(
        msgpack.packb([[Kind.CONTROL, "", None, 0, "actors.Notice", {"text": 5}]]),
        "control message refused",
        id="bad-control-body",
    ),
]


@pytest.mark.parametrize(("frame", "notice"), BAD_FRAMES_AFTER_HELLO)
async def test_a_bad_frame_after_the_hello_gets_a_notice_and_the_link_survives(
    frame: bytes | str, notice: str
) -> None:
    """A bad frame on a running link is answered with a Notice; the same link still works."""
    async with serving() as server:

        async def bad() -> str:
            async with raw_client(server.url) as raw:
                await raw.handshake()
                await raw.send(frame)
                reply = await raw.receive_control(actors._link.Notice)
                # The link is still up: a good ask on the same connection is answered.
                await raw.send_envelope(Kind.ASK, "calc", 7, 4)
                envelope = await raw.receive_envelope()
                assert envelope[0] == Kind.REPLY and envelope[3] == 7 and envelope[5] == 8
                return str(reply.text)

        text = await alongside_good_client(server, bad)
    assert notice in text


@pytest.mark.parametrize(
    ("to", "type_name", "body", "error", "text"),
    [
        pytest.param(
            "calc",
            "test.ws.Order",
            {"item": "pen", "quantity": "5"},
            "BodyError",
            "expected int @ $.quantity",
            id="wrong-field-type",
        ),
        pytest.param(
            "calc",
            "test.ws.Order",
            {"item": "pen"},
            "BodyError",
            "required field missing @ $.quantity",
            id="missing-field",
        ),
        pytest.param(
            "calc", "no.such.Type", {}, "UnknownMessageType", "'no.such.Type'", id="unknown-type"
        ),
        pytest.param("nobody", "", 1, "ActorNotFound", "'nobody'", id="unknown-actor"),
    ],
)
async def test_an_ask_with_a_bad_body_gets_a_fail_reply(
    to: str, type_name: str, body: Any, error: str, text: str
) -> None:
    """An ask whose body does not fit its type is answered with FAIL naming type and field."""
    async with serving() as server:

        async def bad() -> list[Any]:
            async with raw_client(server.url) as raw:
                await raw.handshake()
                await raw.send(b"\x91" + msgpack.packb([Kind.ASK, to, None, 11, type_name, body]))
                envelope = await raw.receive_envelope()
                await raw.send_envelope(Kind.ASK, "calc", 12, Order("ok", 1))
                good = await raw.receive_envelope()
                assert good[:5] == [Kind.REPLY, "", None, 12, "test.ws.Order"]
                assert good[5] == {"item": "ok", "quantity": 2}
                return envelope

        envelope = await alongside_good_client(server, bad)
    assert envelope[0] == Kind.FAIL and envelope[3] == 11
    error_type, error_text = envelope[5]
    assert error_type == error
    assert text in error_text
    if error == "BodyError":
        assert "test.ws.Order" in error_text


async def test_a_frame_over_max_frame_size_closes_only_that_connection() -> None:
    """A frame bigger than the server's max_frame_size closes that connection (1009)."""
    async with serving(max_frame_size=SMALL) as server:

        async def bad() -> CloseReason:
            async with raw_client(server.url) as raw:
                await raw.handshake()
                await raw.send_envelope(Kind.TELL, "calc", 0, b"x" * (SMALL + 1024))
                return await raw.closed()

        close = await alongside_good_client(server, bad)
    assert close.code == 1009
    assert close.reason is not None and str(SMALL) in close.reason


# -- connections that die abruptly --------------------------------------------------------------


async def open_upgraded(url: str) -> tuple[trio.SocketStream, WSConnection]:
    """A websocket upgraded by hand with wsproto, so it can be dropped without a close."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/")))
    while True:
        data = await stream.receive_some(65536)
        assert data, "server closed during the upgrade"
        ws.receive_data(data)
        if any(isinstance(event, AcceptConnection) for event in ws.events()):
            return stream, ws


async def drop_after_tcp_connect(url: str) -> None:
    """Connect TCP and hang up at once."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.aclose()


async def drop_mid_http_upgrade(url: str) -> None:
    """Send half an HTTP upgrade request, then hang up."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgr")
    await stream.aclose()


async def drop_after_upgrade(url: str) -> None:
    """Complete the websocket upgrade, then hang up without a close frame."""
    stream, _ = await open_upgraded(url)
    await stream.aclose()


async def drop_mid_hello_frame(url: str) -> None:
    """Send the first half of a hello frame, then hang up."""
    stream, ws = await open_upgraded(url)
    raw_hello = Codec().encode_frame([(Kind.CONTROL, "", None, 0, make_hello(node_id="dropper"))])
    data = ws.send(BytesMessage(data=raw_hello))
    await stream.send_all(data[: len(data) // 2])
    await stream.aclose()


async def drop_mid_proof(url: str) -> None:
    """Say hello with auth and hang up before sending the proof."""
    async with raw_client(url) as raw:
        await raw.handshake(auth=True)
        await raw.receive_control(Proof)
        await raw.ws._stream.aclose()  # no close frame: an abrupt hang-up


@pytest.mark.parametrize(
    "drop",
    [
        drop_after_tcp_connect,
        drop_mid_http_upgrade,
        drop_after_upgrade,
        drop_mid_hello_frame,
        drop_mid_proof,
    ],
    ids=lambda f: f.__name__,
)
async def test_the_server_survives_a_client_that_drops_mid_handshake(
    drop: Callable[[str], Awaitable[None]],
) -> None:
    """A client vanishing at any point of the handshake leaves the server serving everyone."""
    async with serving(secret=SECRET) as server:
        await alongside_good_client(server, lambda: drop(server.url))
        # ... and new clients can still link.
        async with open_actor_system(secret=SECRET, link=QUICK) as late:
            with trio.fail_after(TIMEOUT):
                peer = await late.connect(server.url)
                assert await peer.ref("calc").ask(7) == 14


# -- limits on the sending side ---------------------------------------------------------------


async def test_a_message_over_max_frame_size_is_refused_at_send_time() -> None:
    """A message bigger than the link's max_frame_size raises MessageTooLarge; nothing is sent."""
    async with (
        serving() as server,
        open_actor_system(
            link=LinkConfig(max_frame_size=SMALL, disconnect_timeout=QUICK_CLOSE)
        ) as client,
    ):
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(server.url)
            calc = peer.ref("calc")
            assert await calc.ask(b"ab") == b"abab"
            link = peer.link
            assert link is not None
            sent = (link.frames_sent, link.envelopes_sent)
            big = b"x" * (SMALL + 1)
            with pytest.raises(MessageTooLarge, match="max frame size"):
                await calc.ask(big)
            with pytest.raises(MessageTooLarge):
                await calc.tell(big)
            with pytest.raises(MessageTooLarge):
                calc.tell_nowait(Order("x" * SMALL, 1))
            assert (link.frames_sent, link.envelopes_sent) == sent
            assert link.pending == {}
            # Just under the limit still goes through, on the same link.
            assert await calc.ask(b"y" * (SMALL // 2 - 100)) == b"y" * (SMALL - 200)
            assert peer.links_opened == 1


async def test_a_reply_over_max_frame_size_fails_the_ask_with_message_too_large() -> None:
    """If the answer is too big for the server's link, the asker gets MessageTooLarge."""
    async with serving(max_frame_size=SMALL) as server:
        with trio.fail_after(TIMEOUT):
            calc = server.good.ref("calc")
            with pytest.raises(MessageTooLarge, match="could not be encoded"):
                await calc.ask(b"z" * (SMALL // 2 + 1))  # doubled: over the limit
            await server.check_good_client()


async def test_connecting_where_nothing_listens_raises_connect_failed() -> None:
    """``connect(reconnect=False)`` to a closed port raises ConnectFailed, quickly."""
    port = free_tcp_port()
    url = f"ws://127.0.0.1:{port}"
    async with open_actor_system(link=QUICK) as client:
        with trio.fail_after(TIMEOUT), pytest.raises(ConnectFailed, match=f"127.0.0.1:{port}"):
            await client.connect(url, reconnect=False)
        assert client.peers() == {}


async def test_closing_a_client_node_leaves_trio_consistent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Shutting down a node with an outgoing websocket link closes it without corrupting
    trio's cancel scopes (the websocket context is exited where it was entered)."""
    caplog.set_level(logging.DEBUG, logger="actors")
    async with serving() as server:
        async with open_actor_system(link=QUICK) as client:
            with trio.fail_after(TIMEOUT):
                peer = await client.connect(server.url)
                assert await peer.ref("calc").ask(1) == 2
        with trio.fail_after(TIMEOUT):
            await server.check_good_client()
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "corrupted" in m], messages
