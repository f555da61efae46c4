"""The ClientConnection actor: the control plane's side of one connected client.

Submissions from the client are forwarded to the control plane together with the
client's pending replies, so this actor never waits on them; results and events go
straight to the client's inbox, so each client gets only its own.
"""

from __future__ import annotations

from typing import Any

from actors import Actor, ActorRef, Context, Delivery, LinkDown, LinkUp, Peer, Reply

from ._messages import (
    Cancel,
    GetResult,
    GetStats,
    GetStatus,
    Submission,
    Submit,
    SubmitFlow,
    SubscribeEvents,
    Watch,
)
from ._protocol import (
    Accept,
    AcceptFlow,
    CancelTask,
    EventSubscription,
    GetCacheStatistics,
    GetClusterStats,
    Lookup,
    StatusOf,
    Unsubscribe,
    WatchIds,
)


class ClientConnection(Actor):
    """One per registered client; named ``client/<id>``.

    A request it does not understand is answered with an error; the connection stays.
    """

    batch_limit = 4096
    reply_errors = (TypeError,)

    def __init__(self, peer: Peer, inbox: str, control_plane: ActorRef, cache: ActorRef) -> None:
        self.peer = peer
        self.node_id = peer.node_id
        self.inbox = peer.ref(inbox)
        self.control_plane = control_plane
        self.cache = cache

    async def started(self, ctx: Context) -> None:
        """Watch the link so the connection ends with it."""
        ctx.system.monitor_peers(ctx.self)

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Forward every Submit in the batch to the control plane as one Accept."""
        groups: list[tuple[list[Submission], Reply | None, ActorRef | None]] = []
        rest = []
        for delivery in batch:
            msg = delivery.message
            kind = type(msg)
            if kind is Submit:
                groups.append((msg.tasks, delivery.reply, self.inbox if msg.watch else None))
            elif kind is Cancel and delivery.reply is not None:
                # The control plane answers the client itself: a cancel waiting for a
                # running task to confirm must not hold up this client's other requests.
                await self.control_plane.tell(CancelTask(msg.id, delivery.reply))
            else:
                rest.append(delivery)
        if groups:
            await self.control_plane.tell(Accept(groups))
        await super().handle_batch(ctx, rest)

    async def receive(self, ctx: Context, message: Any) -> Any:
        """Queries, cancels, watches and event subscriptions."""
        kind = type(message)
        if kind is Watch:
            await self.control_plane.tell(WatchIds(message.ids, self.inbox))
        elif kind is SubmitFlow:
            # Answered by the control plane once accepted (durable with a journal).
            watcher = self.inbox if message.watch else None
            await self.control_plane.tell(AcceptFlow(message, ctx.defer_reply(), watcher))
        elif kind is GetResult:
            return await self.cache.ask(Lookup(message.id))
        elif kind is GetStatus:
            status = await self.control_plane.ask(StatusOf(message.id))
            if status is None:
                outcome = await self.cache.ask(Lookup(message.id))
                status = outcome.status if outcome is not None else None
            return status
        elif kind is Cancel:
            return await self.control_plane.ask(CancelTask(message.id))
        elif kind is SubscribeEvents:
            await self.control_plane.tell(EventSubscription(self.inbox, message.enabled))
        elif kind is GetStats:
            cached = (await self.cache.ask(GetCacheStatistics())).entries
            return await self.control_plane.ask(GetClusterStats(cached))
        elif kind is LinkDown:
            if message.node_id == self.node_id and not self.peer.connected:
                await self._leave(ctx)
        elif kind is LinkUp:
            pass
        else:
            raise TypeError(f"a client connection does not handle {kind.__name__}")
        return None

    async def _leave(self, ctx: Context) -> None:
        ctx.system.demonitor_peers(ctx.self)
        # Waits for room (a full mailbox must not crash this actor before it has
        # unsubscribed: the gone client would keep being sent results and events).
        await self.cache.tell(Unsubscribe(self.inbox))
        await self.control_plane.tell(EventSubscription(self.inbox, False))
        ctx.stop()
