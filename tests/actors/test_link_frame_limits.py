"""Frame limits between nodes that do not share one (real loopback websockets).

Each side's hello says the largest frame it accepts; a link sends nothing larger than
the smaller of the two limits. A message over it fails its own send with
MessageTooLarge, and the link stays up (no close for an oversized frame, no reconnect
that would send it again).
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from actors import Actor, Context, LinkConfig, MessageTooLarge, open_actor_system

TIMEOUT = 10.0
SMALL = 64 * 1024


class Echo(Actor):
    """Answers every message with itself."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        return message


class Sink(Actor):
    """Counts what it is told."""

    def __init__(self, expected: int) -> None:
        self.received: list[Any] = []
        self.expected = expected
        self.done = trio.Event()

    async def receive(self, ctx: Context, message: Any) -> Any:
        self.received.append(message)
        if len(self.received) >= self.expected:
            self.done.set()
        return None


async def test_a_message_over_the_peers_smaller_limit_fails_its_send_not_the_link() -> None:
    """A server taking 64 KiB frames, a client allowing 16 MiB: the client's ask, tell and
    tell_nowait of 100 KB raise MessageTooLarge naming the limit; nothing is sent, and
    the same link keeps serving (before, the server closed it with 1009 and the client
    reconnected)."""
    quick = {"disconnect_timeout": 0.2}
    async with (
        open_actor_system(link=LinkConfig(max_frame_size=SMALL, **quick), role="s") as server,
        open_actor_system(link=LinkConfig(**quick), role="c") as client,
    ):
        await server.spawn("echo", Echo)
        url = await server.listen("ws://127.0.0.1:0")
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(url)
            echo = peer.ref("echo")
            link = peer.link
            assert link is not None and link.max_frame == SMALL
            big = b"x" * 100_000
            with pytest.raises(MessageTooLarge, match=str(SMALL)):
                await echo.ask(big)
            with pytest.raises(MessageTooLarge):
                await echo.tell(big)
            with pytest.raises(MessageTooLarge):
                echo.tell_nowait(big)
            assert await echo.ask(b"y" * 1000) == b"y" * 1000
            assert peer.links_opened == 1 and peer.link is link and link.closed is None


async def test_many_messages_under_the_limit_are_split_into_frames_that_fit() -> None:
    """40 tells of 20 KB queued at once (800 KB, over a 64 KiB frame on the receiving
    side) all arrive, over one link, in several frames."""
    quick = {"disconnect_timeout": 0.2}
    sink = Sink(40)
    async with (
        open_actor_system(link=LinkConfig(max_frame_size=SMALL, **quick), role="s") as server,
        open_actor_system(link=LinkConfig(**quick), role="c") as client,
    ):
        await server.spawn("sink", lambda: sink)
        url = await server.listen("ws://127.0.0.1:0")
        with trio.fail_after(TIMEOUT):
            peer = await client.connect(url)
            ref = peer.ref("sink")
            for i in range(40):
                ref.tell_nowait([i, b"z" * 20_000])
            await sink.done.wait()
            link = peer.link
            assert link is not None
        assert [m[0] for m in sink.received] == list(range(40))
        assert link.frames_sent >= 40 * 20_000 // SMALL
        assert peer.links_opened == 1
