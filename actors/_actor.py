"""The Actor base class and the context each incarnation runs with."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import trio

from ._errors import ActorCrashed, ActorGone

if TYPE_CHECKING:
    from ._mailbox import Delivery, Mailbox
    from ._ref import ActorRef, LocalRef, Reply

log = logging.getLogger("actors.actor")

SystemT = TypeVar("SystemT")
"""The type of the node a Context belongs to (``actors.Context`` is ``Context[ActorSystem]``)."""


class Context(Generic[SystemT]):
    """What an actor incarnation can reach: its ref, its mailbox, a nursery, the system.

    ``nursery`` belongs to this incarnation: tasks started there are cancelled when the
    actor stops or restarts, and an exception in one of them crashes the actor (and so
    goes to its supervisor). ``sender`` is the sender of the message being handled.

    The class is generic in the type of ``system`` only so that this module need not
    name ``ActorSystem``, which sits above it: for type checkers ``actors.Context`` is
    ``Context[ActorSystem]``; at run time it is this class.
    """

    __slots__ = ("_reply", "_stop_scope", "mailbox", "nursery", "self", "sender", "system")

    def __init__(
        self, system: SystemT, ref: LocalRef, mailbox: Mailbox, nursery: trio.Nursery
    ) -> None:
        self.system = system
        self.self = ref
        self.mailbox = mailbox
        self.nursery = nursery
        self.sender: ActorRef | None = None
        self._reply: Reply | None = None
        self._stop_scope = trio.CancelScope()

    @property
    def name(self) -> str:
        """The actor's registered name."""
        return self.self.name

    def defer_reply(self) -> Reply:
        """Take over answering the ask being handled (to answer later, or from elsewhere).

        The handler's return value is then ignored; the caller waits until the returned
        Reply is resolved or failed. Useful to forward a request to another actor along
        with its Reply, so the actor in the middle never waits.

        Returns:
            The Reply to resolve (or fail) later.

        Raises:
            RuntimeError: the current message is a tell (there is nothing to answer).
        """
        reply = self._reply
        if reply is None:
            raise RuntimeError("defer_reply() needs an ask being handled (this is a tell)")
        self._reply = None
        return reply

    def stop(self) -> None:
        """End this actor normally after the current message (transient: not restarted)."""
        self._stop_scope.cancel()


class Actor:
    """Subclass and override ``receive``; the runtime feeds it one message at a time.

    The default loop awaits the first message, then takes every ready one and hands the
    batch to ``handle_batch`` (which calls ``receive`` for each): under load, an actor
    that overrides ``handle_batch`` can amortise work over many messages; when idle,
    nothing waits for a batch to fill.

    ``receive``'s return value answers an ask. An exception answers the ask with that
    error and crashes the incarnation (its supervisor decides what next), except the
    types listed in ``reply_errors``: those only answer the ask (or are logged for a
    tell) and the actor carries on.
    """

    reply_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    batch_limit: ClassVar[int] = 512

    async def started(self, ctx: Context[Any]) -> None:
        """Called before the actor is reported ready (``spawn`` returns after it)."""

    async def receive(self, ctx: Context[Any], message: Any) -> Any:
        """Handle one message; the return value answers an ask."""
        raise NotImplementedError(f"{type(self).__qualname__} does not handle {message!r}")

    async def run(self, ctx: Context[Any]) -> None:
        """The message loop. Override for full control (return to stop normally)."""
        mailbox = ctx.mailbox
        limit = self.batch_limit
        while True:
            batch = await mailbox.get_batch(limit)
            await self.handle_batch(ctx, batch)

    async def handle_batch(self, ctx: Context[Any], batch: list[Delivery]) -> None:
        """Handle messages taken together; unhandled ones go back to the mailbox on a crash."""
        for index, delivery in enumerate(batch):
            try:
                await self.handle(ctx, delivery)
            except BaseException:
                ctx.mailbox.give_back(batch[index + 1 :])
                raise
            if ctx._stop_scope.cancel_called:  # ctx.stop(): the rest is not ours to handle
                ctx.mailbox.give_back(batch[index + 1 :])
                return

    async def handle(self, ctx: Context[Any], delivery: Delivery) -> None:
        """Handle one delivery: call ``receive`` and route its answer or error.

        An error in ``reply_errors`` answers the ask and the actor goes on; any other
        error fails the ask with ActorCrashed and propagates (the supervisor decides).

        Raises:
            Exception: what ``receive`` raised, outside ``reply_errors``.
            Cancelled: the actor was stopped mid-message (the ask gets ActorGone).
        """
        ctx.sender = delivery.sender
        ctx._reply = delivery.reply
        try:
            value = await self.receive(ctx, delivery.message)
        except self.reply_errors as exc:
            reply = ctx._reply
            if reply is not None:
                reply.fail(exc)
            elif delivery.reply is None:
                log.warning("%s: %s while handling a tell: %s", ctx.name, type(exc).__name__, exc)
            return
        except trio.Cancelled:
            if ctx._reply is not None:
                ctx._reply.fail(ActorGone(f"actor {ctx.name!r} stopped while handling the request"))
            raise
        except Exception as exc:
            if ctx._reply is not None:
                crashed = ActorCrashed(
                    f"actor {ctx.name!r} crashed handling the request: {type(exc).__name__}: {exc}"
                )
                crashed.__cause__ = exc
                ctx._reply.fail(crashed)
            raise
        finally:
            reply = ctx._reply
            ctx._reply = None
        if reply is not None:
            reply.resolve(value)
