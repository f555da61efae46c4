"""Resource limits of a listening node: connection cap, handshake timeouts, sizes.

Real sockets on 127.0.0.1 (port 0), so trio's real clock: every wait is for an event
under ``trio.fail_after``. Each attack runs while a well-behaved client, linked before
it started, keeps asking the server; afterwards that client must still get correct
answers on its original link (``alongside_good_client``).

Not repeated here (see tests/actors/test_link_websocket.py): a client silent after the
upgrade closed with 4000 "handshake timed out", a single frame over max_frame_size
closed with 1009, MessageTooLarge at send time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket
from security_support import (
    QUICK,
    SECRET,
    TIMEOUT,
    alongside_good_client,
    host_port,
    make_hello,
    raw_client,
    serving,
)
from support import wait_until
from trio_websocket import CloseReason, ConnectionRejected
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

import fastworker
from actors import ConnectFailed, Kind, open_actor_system
from actors._link import Proof
from fastworker._serialization import pack_arguments
from fastworker.testing import open_cluster

CAP = 5
LONG = 60.0  # a handshake timeout that never fires during a test


async def open_idle_websocket(
    stack: AsyncExitStack, url: str
) -> trio_websocket.WebSocketConnection:
    """A websocket that completes the upgrade and then says nothing (no hello)."""
    return await stack.enter_async_context(
        trio_websocket.open_websocket_url(url, connect_timeout=TIMEOUT, disconnect_timeout=0.5)
    )


async def open_idle_tcp(stack: AsyncExitStack, url: str) -> trio.SocketStream:
    """A TCP connection that never starts its HTTP upgrade."""
    host, port = host_port(url)
    stream = await trio.open_tcp_stream(host, port)
    stack.push_async_callback(stream.aclose)
    return stream


async def rejected(url: str) -> ConnectionRejected:
    """Open a websocket that the server must refuse at the upgrade; return the rejection."""
    with pytest.raises(ConnectionRejected) as info:
        async with trio_websocket.open_websocket_url(url, connect_timeout=TIMEOUT):
            pass  # pragma: no cover
    return info.value


async def wait_until_eof(stream: trio.SocketStream) -> bytes:
    """Read until the server closes the TCP connection; return everything it sent."""
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


# -- the connection cap ---------------------------------------------------------------------


async def test_connections_over_the_cap_are_refused_with_503_and_a_reason() -> None:
    """With max_connections=5, the good client and four idle websockets fill the node; each
    further connection is refused at once with HTTP 503 saying why, an actor system gets
    ConnectFailed with that reason, and the good client is served throughout."""
    async with serving(max_connections=CAP, handshake_timeout=LONG) as server:

        async def attack() -> list[float]:
            times = []
            async with AsyncExitStack() as stack:
                for _ in range(CAP - 1):
                    await open_idle_websocket(stack, server.url)
                for _ in range(20):
                    start = trio.current_time()
                    refusal = await rejected(server.url)
                    times.append(trio.current_time() - start)
                    assert refusal.status_code == 503
                    assert refusal.body is not None
                    assert b"limit of 5 connections" in refusal.body, refusal.body
                async with open_actor_system(link=QUICK) as late:
                    with pytest.raises(ConnectFailed, match="HTTP 503: this node is at its limit"):
                        await late.connect(server.url, reconnect=False)
            return times

        times = await alongside_good_client(server, attack)
        assert max(times) < 1.0, times  # refused promptly, not after a timeout
    assert server.answered > 0


async def test_connections_still_in_their_http_upgrade_count_against_the_cap() -> None:
    """TCP connections that have not sent their upgrade request hold a slot too: four of
    them next to the good client fill a cap of 5, and the next websocket is refused."""
    async with serving(max_connections=CAP, handshake_timeout=LONG) as server:

        async def attack() -> None:
            async with AsyncExitStack() as stack:
                for _ in range(CAP - 1):
                    await open_idle_tcp(stack, server.url)
                # The server is in this trio run: once every task is blocked it has
                # accepted them (their handlers counted them against the cap at once).
                await trio.testing.wait_all_tasks_blocked()
                refusal = await rejected(server.url)
                assert refusal.status_code == 503

        await alongside_good_client(server, attack)


async def linked_and_answered(url: str, number: int, *, refused: str = "") -> bool:
    """Link a new client to ``url`` and have "calc" double ``number``: True once it did,
    False while the server refuses the link (whose error must mention ``refused``)."""
    try:
        async with open_actor_system(link=QUICK) as late:
            peer = await late.connect(url, reconnect=False)
            assert await peer.ref("calc").ask(number) == 2 * number
    except ConnectFailed as exc:
        assert refused in str(exc)
        return False
    return True


async def test_a_slot_is_free_again_once_its_connection_is_gone() -> None:
    """Closing an idle connection, or the handshake timeout closing it, frees its slot: a
    new client then links and is answered (the cap is a count of open connections)."""
    async with serving(max_connections=3, handshake_timeout=LONG) as server:
        async with AsyncExitStack() as stack:
            idle = [await open_idle_websocket(stack, server.url) for _ in range(2)]
            assert (await rejected(server.url)).status_code == 503
            await idle[0].aclose()
            # The server notices the close asynchronously; until then it answers 503.
            await wait_until(
                partial(linked_and_answered, server.url, 4, refused="HTTP 503"),
                timeout=TIMEOUT,
                what="a slot freed by the closed connection",
            )
    async with serving(max_connections=2, handshake_timeout=0.5) as server:
        async with AsyncExitStack() as stack:
            ws = await open_idle_websocket(stack, server.url)
            assert (await rejected(server.url)).status_code == 503
            with trio.fail_after(TIMEOUT), pytest.raises(trio_websocket.ConnectionClosed) as info:
                while True:
                    await ws.get_message()  # the server's hello, then its close
            assert info.value.reason is not None
            assert (info.value.reason.code, info.value.reason.reason) == (
                4000,
                "handshake timed out",
            )
            with trio.fail_after(TIMEOUT):
                async with open_actor_system(link=QUICK) as late:
                    peer = await late.connect(server.url)
                    assert await peer.ref("calc").ask(5) == 10


async def test_a_flood_beyond_twice_the_cap_is_dropped_without_reading() -> None:
    """Past twice the cap, a connection is closed at once without even reading its request
    (no reason can be given before HTTP); the good client stays served."""
    async with serving(max_connections=2, handshake_timeout=LONG) as server:

        async def attack() -> bytes:
            async with AsyncExitStack() as stack:
                await open_idle_tcp(stack, server.url)  # the cap (2) is now full
                for _ in range(2):  # over the cap: waiting to be told 503
                    await open_idle_tcp(stack, server.url)
                await trio.testing.wait_all_tasks_blocked()  # all three accepted and counted
                flood = await open_idle_tcp(stack, server.url)
                with trio.fail_after(0.9):  # before the over-cap ones time out (1 s)
                    return await wait_until_eof(flood)

        assert await alongside_good_client(server, attack) == b""


async def test_a_connection_over_the_cap_that_never_sends_its_request_is_dropped() -> None:
    """A connection over the cap gets at most a second to send its upgrade request."""
    async with serving(max_connections=1, handshake_timeout=LONG) as server:

        async def attack() -> float:
            async with AsyncExitStack() as stack:
                stream = await open_idle_tcp(stack, server.url)
                start = trio.current_time()
                with trio.fail_after(TIMEOUT):
                    assert await wait_until_eof(stream) == b""
                return trio.current_time() - start

        waited = await alongside_good_client(server, attack)
        assert 0.5 < waited < 5.0


async def test_many_refused_connections_leave_no_trace() -> None:
    """Two hundred connections refused over the cap leave no peer, no task and no open
    connection behind: afterwards a free slot accepts a client again."""
    async with serving(max_connections=2, handshake_timeout=LONG) as server:
        before = len(server.system.peers())
        async with AsyncExitStack() as stack:
            await open_idle_websocket(stack, server.url)
            for _ in range(200):
                assert (await rejected(server.url)).status_code == 503
        assert len(server.system.peers()) == before
        await wait_until(
            partial(linked_and_answered, server.url, 6),
            timeout=TIMEOUT,
            what="a free slot after the refused connections",
        )
        await server.check_good_client()


# -- handshake timeouts -----------------------------------------------------------------------


async def test_a_client_that_never_finishes_the_http_upgrade_is_dropped() -> None:
    """Half an HTTP upgrade request and then silence: the server hangs up after
    handshake_timeout (trio-websocket never sees a request), without answering."""
    async with serving(handshake_timeout=0.5) as server:

        async def attack() -> tuple[bytes, float]:
            host, port = host_port(server.url)
            stream = await trio.open_tcp_stream(host, port)
            start = trio.current_time()
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgr")
            with trio.fail_after(TIMEOUT):
                data = await wait_until_eof(stream)
            return data, trio.current_time() - start

        data, waited = await alongside_good_client(server, attack)
    assert data == b""
    # The server's clock starts at accept, a moment before ours: allow that moment.
    assert 0.4 <= waited < 3.0


async def test_a_slowloris_upgrade_is_dropped_even_while_bytes_trickle_in() -> None:
    """Header lines sent one every 0.1 s never finish the request: the timeout is on the
    whole upgrade, not on silence, so the connection is dropped after handshake_timeout."""
    async with serving(handshake_timeout=0.5) as server:

        async def attack() -> float:
            host, port = host_port(server.url)
            stream = await trio.open_tcp_stream(host, port)
            start = trio.current_time()
            await stream.send_all(b"GET / HTTP/1.1\r\n")
            with trio.fail_after(TIMEOUT):
                try:
                    for i in range(200):
                        await stream.send_all(f"X-Slow-{i}: x\r\n".encode())
                        await trio.sleep(0.1)
                except trio.BrokenResourceError:
                    pass
                else:  # pragma: no cover
                    pytest.fail("the server kept a trickling upgrade open for 20 s")
                await wait_until_eof(stream)
            return trio.current_time() - start

        waited = await alongside_good_client(server, attack)
    # The server's clock starts at accept, a moment before ours: allow that moment.
    assert 0.4 <= waited < 3.0


async def test_a_client_that_stalls_before_its_proof_is_closed_when_the_handshake_times_out() -> (
    None
):
    """With a secret, a client that says hello (offering auth), reads the server's proof
    and never sends its own is closed with 4000 "handshake timed out"."""
    async with serving(secret=SECRET, handshake_timeout=0.5) as server:

        async def attack() -> tuple[CloseReason, float]:
            async with raw_client(server.url) as raw:
                start = trio.current_time()
                await raw.handshake(auth=True)
                await raw.receive_control(Proof)
                close = await raw.closed()
                return close, trio.current_time() - start

        close, waited = await alongside_good_client(server, attack)
    assert (close.code, close.reason) == (4000, "handshake timed out")
    assert waited < 3.0


# -- sizes --------------------------------------------------------------------------------------

SMALL = 64 * 1024


async def fragmented_upload(url: str, fragment: int, total: int) -> tuple[int, str]:
    """Upgrade by hand and send one message in fragments of ``fragment`` bytes up to
    ``total`` bytes (never finished); return the server's close code and reason."""
    host, port = host_port(url)
    stream = await trio.open_tcp_stream(host, port)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=f"{host}:{port}", target="/")))
    accepted = False
    while not accepted:
        data = await stream.receive_some(65536)
        assert data
        ws.receive_data(data)
        accepted = any(isinstance(e, AcceptConnection) for e in ws.events())
    sent = 0
    try:
        while sent < total:
            chunk = b"x" * fragment
            await stream.send_all(ws.send(BytesMessage(data=chunk, message_finished=False)))
            sent += fragment
    except trio.BrokenResourceError:
        pass
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return 1006, ""
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, CloseConnection):
                await stream.aclose()
                return event.code, event.reason or ""


async def test_a_message_sent_in_small_fragments_is_refused_once_it_passes_the_limit() -> None:
    """A message split into 1 KiB fragments is counted as a whole: past max_frame_size the
    server closes with 1009 (it never buffers more than the limit), others unaffected."""
    async with serving(max_frame_size=SMALL) as server:
        code, reason = await alongside_good_client(
            server, lambda: fragmented_upload(server.url, 1024, 4 * SMALL)
        )
    assert code == 1009
    assert str(SMALL) in reason


async def test_an_oversized_first_frame_is_refused_before_the_hello_is_read() -> None:
    """A frame over max_frame_size in place of the hello is refused with 1009 too."""
    async with serving(max_frame_size=SMALL) as server:

        async def attack() -> CloseReason:
            async with raw_client(server.url) as raw:
                hello = make_hello(role="x" * (2 * SMALL))
                await raw.send_envelope(Kind.CONTROL, "", 0, hello)
                return await raw.closed()

        close = await alongside_good_client(server, attack)
    assert close.code == 1009


async def test_a_too_large_argument_raises_payload_too_large_before_anything_is_sent() -> None:
    """Through fastworker over websockets, arguments over max_payload raise PayloadTooLarge
    with the exact text telling the user to pass a reference; no frame leaves the client
    and the control plane counts no submission; normal calls keep working."""
    limit = 64 * 1024
    big = b"x" * (limit + 1)
    size = len(pack_arguments((big,), {}, limit=10 * limit))
    expected = (
        f"task arguments are {size} bytes packed, over the {limit}-byte limit: pass a "
        "reference (a path, a URL, a database key) instead of the data"
    )
    with trio.fail_after(30):
        async with open_cluster(
            "security_tasks", subworkers=1, transport="websocket", max_payload=limit
        ) as cluster:
            async with cluster.open_client(max_payload=limit) as client:
                assert await client.call("security_echo", b"small") == b"small"
                link = client.peer.link
                assert link is not None
                sent = (link.frames_sent, link.envelopes_sent)
                attempts: list[Callable[[], Awaitable[Any]]] = [
                    lambda: client.delay("security_echo", big),
                    lambda: client.submit("security_echo", [big]),
                    lambda: client.call("security_echo", big),
                ]
                for attempt in attempts:
                    with pytest.raises(fastworker.PayloadTooLarge) as info:
                        await attempt()
                    assert str(info.value) == expected
                assert (link.frames_sent, link.envelopes_sent) == sent
                assert (await cluster.control_plane.statistics()).submitted == 1
                assert await client.call("security_echo", b"again") == b"again"


async def test_dead_letters_from_a_peer_do_not_pin_their_bodies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sixteen 1 MiB tells to an actor that does not exist leave the node holding well
    under their 16 MiB (the dead letters keep a record of each, not the data)."""
    import gc
    import tracemalloc

    caplog.set_level(logging.ERROR, logger="actors")  # log records would hold bodies too
    async with serving() as server:
        async with raw_client(server.url) as raw:
            await raw.handshake()
            tracemalloc.start()
            try:
                gc.collect()
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(16):
                    await raw.send_envelope(Kind.TELL, "nobody", 0, b"x" * (1024 * 1024))
                await raw.send_envelope(Kind.ASK, "calc", 1, 1)
                while (await raw.receive_envelope())[0] != Kind.REPLY:
                    pass
                gc.collect()
                kept = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
        assert server.system.dead_letters.count >= 16
        assert kept < 4 * 1024 * 1024, f"the node keeps {kept} bytes for 16 dead letters"
