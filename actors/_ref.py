"""Local actor references: a ref bound to a mailbox on this node.

``ActorRef``, ``Reply`` and ``Future`` live in ``_ref_base`` (below the mailbox) and are
re-exported here for importers of ``actors._ref``; ``RemoteRef`` lives with ``Peer`` in
``_peer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from ._errors import ActorGone, MailboxFull
from ._mailbox import Delivery
from ._ref_base import ActorRef, Future, Reply

if TYPE_CHECKING:
    from ._mailbox import DeadLetters, Mailbox

__all__ = ["ActorRef", "Future", "LocalRef", "Reply"]


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
