"""Helpers shared by the security tests (not tests themselves).

A server node (with a "calc" actor) and a well-behaved client linked to it; hand-driven
clients that speak the link protocol frame by frame (async over trio-websocket: support's
RawClient, re-exported here with make_hello and host_port; or blocking over a plain
socket with wsproto, for hypothesis examples run from another thread); and a server
running in its own thread and trio loop, so that thousands of hypothesis examples hit
one long-lived node.
"""

from __future__ import annotations

import gc
import logging
import socket
import ssl
import threading
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import support.link
import trio
from support.link import MiB
from support.link import RawClient as RawClient
from support.link import make_hello as make_hello
from support.net import host_port as host_port
from support.wait import WaitTimeout, wait_until
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

import actors
from actors import (
    Actor,
    ActorSystem,
    Codec,
    Context,
    LinkConfig,
    Peer,
    open_actor_system,
)

TIMEOUT = 10.0
QUICK_CLOSE = 0.2
QUICK = LinkConfig(disconnect_timeout=QUICK_CLOSE)
SECRET = b"security-test-secret"


@actors.message("test.security.Order")
@attrs.frozen
class Order:
    """A registered message type with typed fields (bodies of the wrong type are refused)."""

    item: str
    quantity: int


class Calc(Actor):
    """Doubles ints and Orders, answers anything else with itself; it never raises."""

    async def receive(self, ctx: Context, message: Any) -> Any:
        if type(message) is int:
            return message * 2
        if isinstance(message, Order):
            return Order(message.item, message.quantity * 2)
        return message


class Recorder(Actor):
    """Keeps every message it receives in ``received`` (shared by all incarnations)."""

    def __init__(self, received: list[Any]) -> None:
        self.received = received

    async def receive(self, ctx: Context, message: Any) -> Any:
        self.received.append(message)
        return "recorded"


# -- a server next to a well-behaved client --------------------------------------------------


@attrs.define
class Server:
    """A listening node plus a well-behaved client already linked to it."""

    system: ActorSystem
    url: str
    good: Peer
    received: list[Any]
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
async def serving(
    *,
    secret: bytes | None = None,
    url: str = "ws://127.0.0.1:0",
    server_tls: ssl.SSLContext | None = None,
    client_tls: ssl.SSLContext | None = None,
    **link_options: Any,
) -> AsyncIterator[Server]:
    """A server ("calc" and a "recorder") on ``url`` and a good client linked to it.

    For ``wss://`` give the server's TLS context and one the good client trusts it with.
    """
    link = LinkConfig(**{"disconnect_timeout": QUICK_CLOSE, **link_options})
    received: list[Any] = []
    async with (
        open_actor_system(secret=secret, link=link, role="server") as system,
        open_actor_system(secret=secret, link=QUICK, role="good-client") as client,
    ):
        await system.spawn("calc", Calc)
        await system.spawn("recorder", lambda: Recorder(received))
        listening = await system.listen(url, ssl_context=server_tls)
        with trio.fail_after(TIMEOUT):
            good = await client.connect(listening, ssl_context=client_tls)
        server = Server(system, listening, good, received)
        with trio.fail_after(TIMEOUT):
            await server.check_good_client(rounds=3)
        yield server


async def alongside_good_client(server: Server, bad: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``bad`` while the good client keeps asking; afterwards it must still be served."""
    with trio.fail_after(TIMEOUT * 3):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.keep_asking)
            result = await bad()
            nursery.cancel_scope.cancel()
        await server.check_good_client()
    return result


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[RawClient]:
    """Open a raw websocket to the server (large enough to send oversized frames)."""
    async with support.link.raw_client(
        url, max_message_size=64 * MiB, disconnect_timeout=1.0
    ) as raw:
        yield raw


# -- a blocking client (wsproto over a socket), for hypothesis examples --------------------------


@attrs.frozen
class Closed:
    """How the server closed a SyncClient's websocket (code 1006: no close frame)."""

    code: int
    reason: str


class SyncClient:
    """A blocking websocket client: wsproto over a plain socket, every read under a timeout."""

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        host, port = host_port(url)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.closed: Closed | None = None
        self._messages: list[bytes | str] = []
        self._partial: list[bytes | str] = []
        self.rejected: tuple[int, bytes] | None = None
        self._reject_status = 0
        self._reject_body = b""
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target="/")))
        accepted = False
        while not accepted and self.closed is None and self.rejected is None:
            for event in self._pump():
                if isinstance(event, AcceptConnection):
                    accepted = True
        if not accepted:
            raise ConnectionError(f"upgrade refused: {self.rejected or self.closed}")

    def _pump(self) -> list[Any]:
        data = self.sock.recv(65536)
        if not data:
            self.closed = self.closed or Closed(1006, "")
            self.ws.receive_data(None)
            return []
        self.ws.receive_data(data)
        events = list(self.ws.events())
        for event in events:
            if isinstance(event, Message):
                self._partial.append(event.data)
                if event.message_finished:
                    first = self._partial[0]
                    joined: bytes | str = (
                        b"".join(self._partial)  # type: ignore[arg-type]
                        if isinstance(first, bytes)
                        else "".join(self._partial)  # type: ignore[arg-type]
                    )
                    self._messages.append(joined)
                    self._partial = []
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.closed = Closed(event.code, event.reason or "")
                try:
                    self.sock.sendall(self.ws.send(event.response()))
                except OSError:
                    pass
            elif isinstance(event, RejectConnection):
                self._reject_status = event.status_code
                if not event.has_body:
                    self.rejected = (event.status_code, b"")
            elif isinstance(event, RejectData):
                self._reject_body += event.data
                if event.body_finished:
                    self.rejected = (self._reject_status, self._reject_body)
        return events

    def send(self, frame: bytes | str) -> None:
        """Send one websocket message (binary for bytes, text for str)."""
        event = BytesMessage(data=frame) if isinstance(frame, bytes) else TextMessage(data=frame)
        self.sock.sendall(self.ws.send(event))

    def receive(self) -> bytes | str | None:
        """The next message, or None once the server closed (see ``closed``)."""
        while not self._messages:
            if self.closed is not None:
                return None
            self._pump()
        return self._messages.pop(0)

    def envelopes(self) -> list[list[Any]] | None:
        """The envelopes of the next frame, or None once closed."""
        frame = self.receive()
        if frame is None:
            return None
        assert isinstance(frame, bytes), frame
        return Codec.decode_frame(frame)

    def wait_closed(self) -> Closed:
        """Read until the server closes; return how."""
        while self.receive() is not None:
            pass
        assert self.closed is not None
        return self.closed

    def close(self) -> None:
        """Close our side (a close frame if still open) and the socket."""
        try:
            if self.closed is None:
                self.sock.sendall(self.ws.send(CloseConnection(code=1000, reason="bye")))
        except Exception:
            pass
        self.sock.close()


# -- a server in its own thread ---------------------------------------------------------------


def count_tasks() -> int:
    """How many tasks the current trio run has (walking every nursery from the root)."""

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return walk(root)


class ErrorCounter(logging.Handler):
    """Counts records at ERROR or above (an unexpected exception inside the node)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class ServerThread:
    """A server node and a well-behaved client, in one trio run in a thread of their own.

    The good client asks "calc" all the time on its own link (``answered`` counts correct
    answers, ``errors`` records anything else). ``call`` runs a function in the server's
    loop. The "actors" logger is turned down to ERROR while it runs (so that thousands of
    refused peers do not fill pytest's log capture) and errors are counted instead.
    """

    def __init__(self, *, secret: bytes | None = None, **link_options: Any) -> None:
        self.secret = secret
        self.link = LinkConfig(**{"disconnect_timeout": QUICK_CLOSE, **link_options})
        self.url = ""
        self.answered = 0
        self.paused = False  # the good client stops asking while True
        self.errors: list[BaseException] = []
        self.system: ActorSystem | None = None
        self.good: Peer | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._ready = threading.Event()
        self._stop: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run, name="security-server", daemon=True)
        self._failure: BaseException | None = None
        self.log_errors = ErrorCounter()
        self._logger = logging.getLogger("actors")
        self._old_level = self._logger.level

    def __enter__(self) -> ServerThread:
        self._logger.setLevel(logging.ERROR)
        self._logger.addHandler(self.log_errors)
        self._thread.start()
        if not self._ready.wait(TIMEOUT) or not self.url:
            raise RuntimeError(f"the server thread did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._token is not None and self._stop is not None:
                try:
                    trio.from_thread.run_sync(self._stop.cancel, trio_token=self._token)
                except trio.RunFinishedError:
                    pass
            self._thread.join(TIMEOUT)
            assert not self._thread.is_alive(), "the server thread did not stop"
        finally:
            self._logger.removeHandler(self.log_errors)
            self._logger.setLevel(self._old_level)
        if self._failure is not None and exc_info[0] is None:
            raise self._failure

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` (sync) in the server's trio loop and return its result."""
        assert self._token is not None
        return trio.from_thread.run_sync(fn, trio_token=self._token)

    def acall(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``await fn()`` in the server's trio loop and return its result."""
        assert self._token is not None
        return trio.from_thread.run(fn, trio_token=self._token)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._failure = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._stop:
            async with (
                open_actor_system(secret=self.secret, link=self.link, role="server") as system,
                open_actor_system(secret=self.secret, link=QUICK, role="good") as client,
            ):
                self.system = system
                await system.spawn("calc", Calc, capacity=100_000)
                self.url = await system.listen("ws://127.0.0.1:0")
                with trio.fail_after(TIMEOUT):
                    self.good = await client.connect(self.url)
                async with trio.open_nursery() as nursery:
                    await nursery.start(self._keep_asking)
                    self._ready.set()
                    await trio.sleep_forever()

    async def _keep_asking(self, *, task_status: trio.TaskStatus[None]) -> None:
        assert self.good is not None
        calc = self.good.ref("calc")
        task_status.started()
        i = 0
        while True:
            while self.paused:  # noqa: ASYNC110 (set from another thread)
                await trio.sleep(0.01)
            try:
                with trio.fail_after(TIMEOUT):
                    answer = await calc.ask(i)
                if answer != 2 * i:
                    raise AssertionError(f"asked {i}, got {answer!r}")
                self.answered += 1
            except (AssertionError, actors.ActorError, trio.TooSlowError) as exc:
                self.errors.append(exc)
            i += 1
            await trio.sleep(0.005)

    def snapshot(self) -> dict[str, Any]:
        """Peers, tasks, dead letters and the good client's state, read in the server loop."""

        async def read() -> dict[str, Any]:
            # Async, like settle(): both count the task trio.from_thread.run makes.
            await trio.lowlevel.checkpoint()
            assert self.system is not None and self.good is not None
            return {
                "peers": len(self.system.peers()),
                "tasks": count_tasks(),
                "dead_letters_kept": len(self.system.dead_letters.recent),
                "good_connected": self.good.connected,
                "good_links": self.good.links_opened,
                "answered": self.answered,
            }

        result: dict[str, Any] = self.acall(read)
        return result

    def wait_answered(self, count: int, timeout: float = TIMEOUT) -> None:
        """Wait until the good client has had ``count`` correct answers in all."""

        async def wait() -> None:
            await wait_until(
                lambda: self.answered >= count,
                timeout=timeout,
                what=f"{count} correct answers to the good client",
                observe=lambda: self.answered,
                max_poll=0.005,  # one wait per fuzz example: keep it short
            )

        self.acall(wait)

    def settle(
        self, peers: int = 1, tasks: int | None = None, timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """Wait until only ``peers`` peers (and at most ``tasks`` tasks) are left, that is
        until the connections of finished examples are closed; then take a snapshot."""

        async def wait() -> None:
            assert self.system is not None
            system = self.system
            try:
                await wait_until(
                    lambda: (
                        len(system.peers()) <= peers and (tasks is None or count_tasks() <= tasks)
                    ),
                    timeout=timeout,
                    max_poll=0.01,  # once per fuzz example: keep it short
                )
            except WaitTimeout:
                pass  # the caller's assertions say what is left

        self.acall(wait)
        return self.snapshot()


class MemoryWatch:
    """Memory the node's code keeps (tracemalloc, by allocation site), between two points.

    Only allocations made in the node's packages count (actors, trio-websocket, wsproto,
    cattrs; msgpack's objects are made from actors' code): hypothesis keeps its own
    examples alive, which is not the node's memory. trio is left out: its deadline heap
    keeps every cancel scope until its deadline passes (seconds later), which is noise
    here; leaked tasks are caught by counting them instead.
    """

    PACKAGES = ("*/actors/*", "*/trio_websocket/*", "*/wsproto/*", "*/cattrs/*")

    def __init__(self) -> None:
        self._started_here = False
        self._base = 0

    def __enter__(self) -> MemoryWatch:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_here = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._started_here:
            tracemalloc.stop()

    def _kept(self) -> int:
        gc.collect()
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(True, pattern) for pattern in self.PACKAGES]
        )
        return sum(stat.size for stat in snapshot.statistics("filename"))

    def mark(self) -> None:
        """Remember the current amount."""
        self._base = self._kept()

    def growth(self) -> int:
        """Bytes kept now beyond the mark."""
        return self._kept() - self._base


def deep_array(depth: int, leaf: bytes = b"\x01") -> bytes:
    """A msgpack value nested ``depth`` arrays deep (each a one-item fixarray)."""
    return b"\x91" * depth + leaf
