"""The client's shared state, its registration with the control plane (and the
re-registration after a reconnect), and the request helpers every call goes through."""

from __future__ import annotations

import logging
import secrets
from itertools import count
from typing import Any

import trio

import actors

from .._errors import ConnectionFailed, FastWorkerError
from .._messages import RegisterClient, SubscribeEvents, Watch
from .._names import REGISTRATION as GATEWAY
from .._records import Event
from ._outcomes import translate

log = logging.getLogger("fastworker.client")

ROLE = "client"
INBOX = "inbox"
WATCH_CHUNK = 50_000
"""Task ids per Watch message at most (a million ids would not fit one frame)."""


class ClientBase:
    """The state a Client's parts share: the link, the registration, waiters, streams."""

    def __init__(
        self,
        system: actors.ActorSystem,
        peer: actors.Peer,
        *,
        max_payload: int,
        reconnect_timeout: float,
    ) -> None:
        self.system = system
        self.peer = peer
        self.max_payload = max_payload
        self.reconnect_timeout = reconnect_timeout
        self._prefix = secrets.token_hex(6)
        self._ids = count(1)
        self._connection: actors.ActorRef | None = None
        self._ready = trio.Event()
        self._inbox_ref: actors.LocalRef | None = None
        self._waiters: dict[str, list[actors.Future]] = {}
        self._submitting: set[str] = set()
        self._event_channels: list[trio.MemorySendChannel[Event]] = []
        self._events_dropped = 0

    @property
    def url(self) -> str:
        """The control plane's URL."""
        return self.peer.url or ""

    @property
    def connected(self) -> bool:
        """True while linked and registered."""
        return self._ready.is_set() and self.peer.connected

    def new_id(self) -> str:
        """A fresh, unique task id (cheap: a random client prefix and a counter)."""
        return f"{self._prefix}-{next(self._ids):x}"

    @staticmethod
    def _translate(exc: actors.ActorError) -> FastWorkerError:
        return translate(exc)

    async def _ask(self, message: Any) -> Any:
        while True:
            connection = await self._connection_ref()
            try:
                return await connection.ask(message)
            except actors.PeerDown:
                continue
            except actors.ActorError as exc:
                raise self._translate(exc) from None

    async def _tell(self, message: Any) -> None:
        connection = await self._connection_ref()
        try:
            await connection.tell(message)
        except actors.PeerDown:
            pass  # watches and subscriptions are renewed after the reconnect

    # -- connection -------------------------------------------------------------------
    def _close(self) -> None:
        """The client is closing: waiting calls raise ConnectionFailed, event streams end."""
        waiters, self._waiters = self._waiters, {}
        for futures in waiters.values():
            for future in futures:
                future.fail(ConnectionFailed("the client was closed while waiting for a result"))
        for channel in self._event_channels:
            channel.close()

    def _usable(self) -> bool:
        # A link that closed is still the peer's link until the peer notices; it is not
        # usable then (asks on it fail at once, without a checkpoint).
        link = self.peer.link
        return (
            self._ready.is_set()
            and self._connection is not None
            and link is not None
            and link.closed is None
        )

    async def _connection_ref(self) -> actors.ActorRef:
        if self._usable():
            assert self._connection is not None
            return self._connection
        with trio.move_on_after(self.reconnect_timeout):
            while not self._usable():
                if self._ready.is_set():
                    # Registered over a link that just went down: _keep_registered
                    # notices within a scheduling round and starts re-registering.
                    await trio.lowlevel.checkpoint()
                else:
                    await self._ready.wait()
            assert self._connection is not None
            return self._connection
        raise ConnectionFailed(
            f"the control plane at {self.url} has been unreachable for "
            f"{self.reconnect_timeout}s: is it running? (fastworker run-actor-system ...)"
        )

    async def _keep_registered(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        first = True
        gateway = self.peer.ref(GATEWAY)
        while True:
            await self.peer.wait_connected()
            try:
                name = await gateway.ask(
                    RegisterClient(self.system.node_id, INBOX), sender=self._inbox_ref
                )
            except actors.PeerDown:
                continue
            self._connection = self.peer.ref(name)
            if not first:
                # Waiting calls resume: re-watch what they wait for, re-subscribe events.
                rewatch = [i for i in self._waiters if i not in self._submitting]
                try:
                    for start in range(0, len(rewatch), WATCH_CHUNK):
                        await self._connection.tell(Watch(rewatch[start : start + WATCH_CHUNK]))
                except actors.PeerDown:
                    pass  # down again already: the next registration re-watches
                if self._event_channels:
                    self._connection.tell_nowait(SubscribeEvents(True))
            self._ready.set()
            if first:
                first = False
                task_status.started()
            await self.peer.wait_disconnected()
            self._ready = trio.Event()
            log.warning("lost the control plane at %s; reconnecting", self.url)
