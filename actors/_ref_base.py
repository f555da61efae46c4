"""The two interfaces the runtime is written against, and the local answer.

``ActorRef`` is where a message goes, ``Reply`` where the answer to an ask goes. Every
layer above (mailboxes, local refs, links, peers) speaks these, so they live at the
bottom; ``Future`` is the Reply a local asker awaits.
"""

from __future__ import annotations

import abc
from typing import Any

import trio


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
