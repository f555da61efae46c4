"""An actor's inbox: a bounded queue with an explicit overflow policy and a system lane."""

from __future__ import annotations

import enum
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import trio

from ._codec import preview
from ._errors import ActorGone, MailboxFull

if TYPE_CHECKING:
    from ._ref_base import ActorRef, Reply

log = logging.getLogger("actors.mailbox")

YIELD_EVERY = 64
"""An awaited put yields to the scheduler at least this often (see ``Mailbox.put``)."""


class Overflow(enum.Enum):
    """What a full mailbox does with a message that cannot wait (``tell_nowait``, the link reader).

    ``REJECT``: refuse it (an ask fails with MailboxFull, a tell goes to dead letters).
    ``DROP_OLDEST``: make room by moving the oldest queued message to dead letters.
    """

    REJECT = "reject"
    DROP_OLDEST = "drop_oldest"


class Delivery:
    """One message in a mailbox, with who sent it and where an answer goes (for an ask).

    ``notice`` marks a runtime notice (a peer up/down, put in the system lane): it stays
    one if it is given back unhandled, so dropping it on close is logged at debug only.
    """

    __slots__ = ("message", "notice", "reply", "sender")

    def __init__(self, message: Any, sender: ActorRef | None = None, reply: Reply | None = None):
        self.message = message
        self.sender = sender
        self.reply = reply
        self.notice = False

    def __repr__(self) -> str:
        return f"Delivery({self.message!r}, sender={self.sender!r}, ask={self.reply is not None})"


@attrs.frozen
class MailboxStatistics:
    """A snapshot of a mailbox: ``queued`` of ``capacity``, and lifetime counters."""

    name: str
    queued: int
    capacity: int
    received: int
    rejected: int
    dropped: int
    closed: bool


def _small(value: Any, budget: int = 1024) -> bool:
    """True if ``value`` is plainly under ``budget`` bytes (cheap: stops once over)."""
    stack = [value]
    seen = 0
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes | bytearray):
            seen += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            seen += 8 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            seen += 16 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif attrs.has(type(item)):
            fields = attrs.fields(type(item))
            seen += 8 * len(fields)
            stack.extend(getattr(item, f.name) for f in fields)
        else:
            seen += 16
        if seen > budget or len(stack) > budget:
            return False
    return True


class DeadLetters:
    """Where messages that could not be delivered go: counted, kept (bounded), logged."""

    def __init__(self, keep: int = 1000) -> None:
        self.count = 0
        self.recent: deque[tuple[str, Any, str]] = deque(maxlen=keep)

    def add(self, to: str, message: Any, reason: str, *, notice: bool = False) -> None:
        """Record an undeliverable message.

        A small message is kept as it is; a big one (over ~1 KiB, e.g. a large body a
        peer sent to a missing actor) only as a short preview, so dead letters never
        pin their data in memory. A runtime ``notice`` (a peer up/down for an actor that
        has stopped, as every connection actor does when its links close) is expected:
        counted and kept, but logged at debug level only.
        """
        self.count += 1
        text = preview(message, 200)
        self.recent.append((to, message if _small(message) else text, reason))
        log.log(
            logging.DEBUG if notice else logging.WARNING,
            "dead letter to %r (%s): %s",
            to,
            reason,
            text,
        )


class Mailbox:
    """A bounded FIFO inbox for one actor name.

    It outlives incarnations of its actor: after a supervised restart the new
    incarnation reads the same mailbox, so refs by name keep working. System messages
    (peer up/down, termination notices) go in a separate unbounded lane that is read
    first, so a full inbox can never hide them.
    """

    def __init__(
        self,
        name: str,
        capacity: int,
        overflow: Overflow,
        dead_letters: DeadLetters,
    ) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.name = name
        self.capacity = capacity
        self.overflow = overflow
        self._dead = dead_letters
        self._queue: deque[Delivery] = deque()
        self._system: deque[Delivery] = deque()
        self._receivers = trio.lowlevel.ParkingLot()
        self._senders = trio.lowlevel.ParkingLot()
        self._closed = False
        self._puts = 0
        self._received = 0
        self._rejected = 0
        self._dropped = 0

    @property
    def closed(self) -> bool:
        """True once the actor stopped for good."""
        return self._closed

    def __len__(self) -> int:
        return len(self._queue) + len(self._system)

    def statistics(self) -> MailboxStatistics:
        """Queue depth, capacity and lifetime counters."""
        return MailboxStatistics(
            name=self.name,
            queued=len(self),
            capacity=self.capacity,
            received=self._received,
            rejected=self._rejected,
            dropped=self._dropped,
            closed=self._closed,
        )

    # -- sending ----------------------------------------------------------------
    def put_nowait(self, delivery: Delivery) -> None:
        """Queue at once; a full mailbox applies its overflow policy.

        Raises:
            ActorGone: the mailbox is closed (its actor stopped).
            MailboxFull: the mailbox is full and its overflow policy rejects.
        """
        if self._closed:
            raise ActorGone(f"actor {self.name!r} has stopped")
        if len(self._queue) >= self.capacity:
            if self.overflow is Overflow.DROP_OLDEST:
                oldest = self._queue.popleft()
                self._dropped += 1
                self._discard(oldest, "dropped: mailbox full (drop_oldest)")
            else:
                self._rejected += 1
                raise MailboxFull(
                    f"mailbox of {self.name!r} is full ({self.capacity} messages): "
                    "the actor is not keeping up; slow down or raise its capacity"
                )
        self._queue.append(delivery)
        self._received += 1
        self._receivers.unpark()

    async def put(self, delivery: Delivery) -> None:
        """Queue, waiting for room while the mailbox is full (backpressure).

        Always a cancellation point; a scheduling point when it waits for room and at
        least every ``YIELD_EVERY`` calls, so a sender in a loop hands its receiver a
        batch instead of one message per task switch.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if len(self._queue) >= self.capacity and not self._closed:
            while len(self._queue) >= self.capacity and not self._closed:
                await self._senders.park()
            self.put_nowait(delivery)
            return
        self.put_nowait(delivery)
        self._puts += 1
        if self._puts >= YIELD_EVERY:
            self._puts = 0
            await trio.lowlevel.cancel_shielded_checkpoint()

    def put_system(self, delivery: Delivery) -> None:
        """Queue a runtime notice past the bound; dropped (dead-lettered) if closed."""
        delivery.notice = True
        if self._closed:
            self._dead.add(self.name, delivery.message, "actor stopped", notice=True)
            return
        self._system.append(delivery)
        self._receivers.unpark()

    # -- receiving --------------------------------------------------------------
    async def get_batch(self, limit: int = 512) -> list[Delivery]:
        """Wait for at least one message, then take every ready one (up to ``limit``)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._queue and not self._system:
            await self._receivers.park()
        batch: list[Delivery] = []
        while self._system and len(batch) < limit:
            batch.append(self._system.popleft())
        queue = self._queue
        while queue and len(batch) < limit:
            batch.append(queue.popleft())
        if self._senders:
            self._senders.unpark(count=len(batch))
        return batch

    def give_back(self, deliveries: list[Delivery]) -> None:
        """Return taken but unhandled messages to the front, in order (after a crash)."""
        self._queue.extendleft(reversed(deliveries))
        if deliveries:
            self._receivers.unpark()

    # -- closing ----------------------------------------------------------------
    def close(self, reason: str = "actor stopped") -> None:
        """Stop taking messages: queued asks fail (ActorGone), tells go to dead letters."""
        if self._closed:
            return
        self._closed = True
        while self._system:
            self._discard(self._system.popleft(), reason, notice=True)
        while self._queue:
            delivery = self._queue.popleft()
            self._discard(delivery, reason, notice=delivery.notice)
        self._senders.unpark_all()
        self._receivers.unpark_all()

    def _discard(self, delivery: Delivery, reason: str, *, notice: bool = False) -> None:
        if delivery.reply is not None:
            delivery.reply.fail(ActorGone(f"actor {self.name!r}: {reason}"))
        else:
            self._dead.add(self.name, delivery.message, reason, notice=notice)
