"""Actor references: one interface (tell, tell_nowait, ask) for local and remote actors."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import trio

from ._errors import ActorGone, MailboxFull
from ._mailbox import Delivery

if TYPE_CHECKING:
    from ._link import Peer
    from ._mailbox import DeadLetters, Mailbox


class Reply(abc.ABC):
    """Where the answer to an ask goes: resolved or failed exactly once."""

    __slots__ = ()

    @abc.abstractmethod
    def resolve(self, value: Any) -> None:
        """Answer the ask with a value."""

    @abc.abstractmethod
    def fail(self, error: BaseException) -> None:
        """Answer the ask with an error."""


class Future(Reply):
    """A one-shot local answer that a caller awaits."""

    __slots__ = ("_done", "_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        """True once resolved or failed."""
        return self._done

    def resolve(self, value: Any) -> None:
        """Set the value (later calls are ignored: the first answer wins)."""
        if not self._done:
            self._done = True
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        """Set the error (later calls are ignored)."""
        if not self._done:
            self._done = True
            self._error = error
            self._event.set()

    def result(self) -> Any:
        """The value of a done future (or raise its error).

        Raises:
            RuntimeError: the future is not done yet.
        """
        if not self._done:
            raise RuntimeError("the future has no answer yet")
        if self._error is not None:
            raise self._error
        return self._value

    async def wait(self) -> Any:
        """Wait for the answer; return the value or raise the error.

        Raises:
            Exception: the error the future was failed with.
        """
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value


class ActorRef(abc.ABC):
    """A handle to an actor, local or on another node; the same three calls either way.

    - ``await ref.tell(msg)``: deliver, waiting for room if the mailbox is full.
    - ``ref.tell_nowait(msg)``: deliver now or apply the mailbox's overflow policy.
    - ``await ref.ask(msg)``: deliver and wait for the answer. The caller owns the
      timeout: ``with trio.fail_after(5): await ref.ask(msg)``.

    A tell to an actor that is gone goes to the dead-letter log; an ask raises at once
    (ActorGone locally, PeerDown when the node is unreachable).
    """

    __slots__ = ()

    name: str

    @property
    @abc.abstractmethod
    def node_id(self) -> str:
        """The uuid of the node the actor lives on."""

    @abc.abstractmethod
    async def tell(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Deliver without waiting for an answer."""

    @abc.abstractmethod
    def tell_nowait(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Deliver without blocking; MailboxFull if the destination cannot take it now."""

    @abc.abstractmethod
    async def ask(self, message: Any, *, sender: ActorRef | None = None) -> Any:
        """Deliver and wait for the answer (the value the actor's handler returned)."""


class LocalRef(ActorRef):
    """A reference to an actor on this node, bound to its mailbox (which survives restarts)."""

    __slots__ = ("_dead", "_mailbox", "_node_id", "name")

    def __init__(self, name: str, node_id: str, mailbox: Mailbox, dead_letters: DeadLetters):
        self.name = name
        self._node_id = node_id
        self._mailbox = mailbox
        self._dead = dead_letters

    @property
    def node_id(self) -> str:
        """The uuid of this node."""
        return self._node_id

    @property
    def alive(self) -> bool:
        """False once the actor stopped for good."""
        return not self._mailbox.closed

    @property
    def mailbox(self) -> Mailbox:
        """The actor's mailbox (for statistics and the runtime's own use)."""
        return self._mailbox

    async def tell(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Deliver, waiting for room; to a stopped actor it goes to dead letters."""
        if self._mailbox.closed:
            await trio.lowlevel.checkpoint()
            self._dead.add(self.name, message, "actor stopped")
            return
        try:
            await self._mailbox.put(Delivery(message, sender))
        except ActorGone:
            self._dead.add(self.name, message, "actor stopped")

    def tell_nowait(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Deliver now; a dead letter if the actor stopped.

        Raises:
            MailboxFull: the mailbox is full and its overflow policy rejects.
        """
        try:
            self._mailbox.put_nowait(Delivery(message, sender))
        except ActorGone:
            self._dead.add(self.name, message, "actor stopped")
        except MailboxFull:
            self._dead.add(self.name, message, "mailbox full")
            raise

    async def ask(self, message: Any, *, sender: ActorRef | None = None) -> Any:
        """Deliver and wait for the answer; ActorGone at once if the actor stopped."""
        future = Future()
        await self._mailbox.put(Delivery(message, sender, future))
        return await future.wait()

    def __repr__(self) -> str:
        return f"<LocalRef {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalRef) and other._mailbox is self._mailbox

    def __hash__(self) -> int:
        return hash((self.name, self._node_id))


class RemoteRef(ActorRef):
    """A reference to an actor on another node, reached through that node's Peer (link).

    The same ref works across reconnects of the link.
    """

    __slots__ = ("_hash", "name", "peer")

    def __init__(self, peer: Peer, name: str) -> None:
        self.peer = peer
        self.name = name
        self._hash = hash((name, id(peer)))

    @property
    def node_id(self) -> str:
        """The uuid of the remote node."""
        return self.peer.node_id

    async def tell(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Send over the link (waiting if its outbox is full); dead letter if the peer is down."""
        await self.peer.send_tell(self.name, message, sender)

    def tell_nowait(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Send over the link now; MailboxFull if its outbox is full, dead letter if down."""
        self.peer.send_tell_nowait(self.name, message, sender)

    async def ask(self, message: Any, *, sender: ActorRef | None = None) -> Any:
        """Send and wait for the answer; PeerDown at once if the link is down."""
        return await self.peer.send_ask(self.name, message, sender)

    def __repr__(self) -> str:
        return f"<RemoteRef {self.name!r} on {self.peer.node_id[:8]}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteRef) and (other.peer, other.name) == (self.peer, self.name)

    def __hash__(self) -> int:
        return self._hash
