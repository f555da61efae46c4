"""The Registration actor (wire name "control-plane"): where clients and subworkers register.

Each registration spawns the peer's own connection actor (ClientConnection or
SubworkerConnection) and answers its name; after that, the peer talks to that actor.
"""

from __future__ import annotations

import logging
from itertools import count
from typing import Any

from actors import Actor, ActorRef, Context, Peer, RemoteRef, Restart

from . import _names as names
from ._client_connection import ClientConnection
from ._errors import ShuttingDown
from ._messages import RegisterClient, RegisterWorker
from ._protocol import BeginDrain
from ._registry import Registry
from ._subworker_connection import SubworkerConnection

log = logging.getLogger("fastworker.gateway")

REGISTRATION = names.REGISTRATION
GATEWAY = REGISTRATION  # its former name


class Registration(Actor):
    """Registers clients and subworkers; answers the name of their connection actor."""

    reply_errors = (ShuttingDown, LookupError, TypeError, ValueError)

    def __init__(
        self,
        control_plane: ActorRef,
        cache: ActorRef,
        registry: Registry,
        connection_mailbox: int = 100_000,
    ) -> None:
        self.control_plane = control_plane
        self.cache = cache
        self.registry = registry
        self.connection_mailbox = connection_mailbox
        self._seq = count(1)
        self.draining = False

    async def receive(self, ctx: Context, message: Any) -> Any:
        """RegisterClient, RegisterWorker, or BeginDrain (refuse new subworkers)."""
        if isinstance(message, BeginDrain):
            self.draining = True
            return None
        if isinstance(message, RegisterClient):
            peer = self._peer_of(ctx, message.node_id)
            name = names.client_connection(message.node_id, next(self._seq))
            await ctx.system.spawn(
                name,
                lambda: ClientConnection(peer, message.inbox, self.control_plane, self.cache),
                restart=Restart.TEMPORARY,
                capacity=self.connection_mailbox,
            )
            return name
        if isinstance(message, RegisterWorker):
            if self.draining:
                raise ShuttingDown("the control plane is shutting down: no new subworkers")
            if message.concurrency < 1:
                raise ValueError("a subworker needs concurrency >= 1")
            if message.queues is not None and not message.queues:
                raise ValueError("a subworker serving queues must name at least one queue")
            peer = self._peer_of(ctx, message.node_id)
            if not message.tasks:
                log.warning(
                    "subworker %s has no tasks: it will never be sent work (check --tasks)",
                    message.node_id[:8],
                )
            worker_id = f"{message.node_id[:8]}/{next(self._seq)}"
            name = names.worker_connection(worker_id)
            await ctx.system.spawn(
                name,
                lambda: SubworkerConnection(
                    peer,
                    worker_id,
                    message.executor,
                    self.control_plane,
                    message.concurrency,
                    message.busy,
                    list(message.tasks),
                    message.queues,
                    message.infos,
                    prefetch=max(0, message.prefetch),
                ),
                restart=Restart.TEMPORARY,
                capacity=self.connection_mailbox,
            )
            return name
        raise TypeError(f"the gateway does not handle {type(message).__name__}")

    @staticmethod
    def _peer_of(ctx: Context, node_id: str) -> Peer:
        """The link the request came over (a peer cannot register for another node)."""
        sender = ctx.sender
        if isinstance(sender, RemoteRef):
            return sender.peer
        return ctx.system.peer(node_id)
