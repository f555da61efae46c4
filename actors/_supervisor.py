"""Supervisors: run children in a nursery, restart them by policy, escalate a crash loop."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from ._actor import Actor, Context
from ._errors import EscalationError, NameTaken
from ._intensity import RestartIntensity
from ._mailbox import Overflow

if TYPE_CHECKING:
    from ._ref import LocalRef

log = logging.getLogger("actors.supervisor")


class ActorRegistry(Protocol):
    """What a supervisor needs of the node it runs in: the node's actors by name.

    ``ActorSystem`` (a layer above) satisfies it; each child's Context carries it as
    ``system``.
    """

    def lookup(self, name: str) -> LocalRef | None:
        """The ref of a running actor, or None."""
        ...

    def _register(self, name: str, capacity: int | None, overflow: Overflow | None) -> LocalRef:
        """Give ``name`` a mailbox and a ref (the name must be free)."""
        ...

    def _unregister(self, name: str, reason: str) -> None:
        """Forget ``name`` and close its mailbox, saying why."""
        ...


class Restart(enum.Enum):
    """When a child is restarted.

    ``PERMANENT``: always (after a crash and after a normal exit).
    ``TRANSIENT``: only after a crash. ``TEMPORARY``: never.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@attrs.frozen
class ChildSpec:
    """How to start (and restart) one child actor."""

    name: str
    factory: Callable[[], Actor]
    restart: Restart = Restart.PERMANENT
    capacity: int | None = None
    overflow: Overflow | None = None


@attrs.frozen
class SupervisorStatistics:
    """Children running and restarts so far."""

    name: str
    children: tuple[str, ...]
    restarts: int


class Supervisor:
    """Owns a nursery of children; restarts them per their policy.

    Restart intensity: more than ``max_restarts`` restarts within ``within`` seconds
    (trio's clock, so virtual time in tests) means a crash loop. The supervisor then
    escalates: it raises EscalationError (chained to the child's error), which cancels
    its other children and propagates to its own parent.
    """

    def __init__(
        self, system: ActorRegistry, name: str, *, max_restarts: int = 3, within: float = 5.0
    ) -> None:
        self._intensity = RestartIntensity(max_restarts, within)  # ValueError if invalid
        self.system = system
        self.name = name
        self.max_restarts = max_restarts
        self.within = within
        self._nursery: trio.Nursery | None = None
        self._restarts = 0
        self._children: dict[str, ChildSpec] = {}

    def statistics(self) -> SupervisorStatistics:
        """Running children and total restarts."""
        return SupervisorStatistics(self.name, tuple(self._children), self._restarts)

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled (start it with ``nursery.start``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self)
            await trio.sleep_forever()

    async def spawn(
        self,
        name: str,
        factory: Callable[[], Actor] | Actor,
        *,
        restart: Restart | str = Restart.PERMANENT,
        capacity: int | None = None,
        overflow: Overflow | str | None = None,
    ) -> LocalRef:
        """Start a child and return its ref once its ``started`` hook has run.

        ``factory`` makes a fresh actor for each incarnation (an Actor subclass works);
        an Actor instance is reused across restarts.

        Raises:
            NameTaken: the name is in use on this node.
            RuntimeError: the supervisor is not running yet.
            Exception: whatever ``started`` raised, if the first start fails.
        """
        if self._nursery is None:
            raise RuntimeError("the supervisor is not running yet")
        if isinstance(factory, Actor):
            instance = factory
            factory = lambda: instance  # noqa: E731
        spec = ChildSpec(
            name=name,
            factory=factory,
            restart=Restart(restart),
            capacity=capacity,
            overflow=Overflow(overflow) if overflow is not None else None,
        )
        if self.system.lookup(name) is not None:
            raise NameTaken(f"an actor named {name!r} already runs on this node")
        ref = self.system._register(name, spec.capacity, spec.overflow)
        self._children[name] = spec
        try:
            await self._nursery.start(self._supervise, spec, ref)
        except BaseException:
            self._children.pop(name, None)
            self.system._unregister(name, "failed to start")
            raise
        return ref

    async def _supervise(self, spec: ChildSpec, ref: LocalRef, *, task_status: Any) -> None:
        started = False

        def report_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        reason = "stopped"
        try:
            while True:
                try:
                    await self._incarnation(spec, ref, report_started)
                except Exception as raised:
                    exc = _unwrap(raised)
                    if not started:
                        reason = "failed to start"
                        raise exc from None
                    if spec.restart is Restart.TEMPORARY:
                        log.error(
                            "actor %r crashed (temporary, not restarted)", spec.name, exc_info=exc
                        )
                        reason = f"crashed: {type(exc).__name__}: {exc}"
                        return
                    self._count_restart(spec, exc)
                    log.warning(
                        "actor %r crashed, restarting: %s: %s", spec.name, type(exc).__name__, exc
                    )
                    continue
                report_started()  # it stopped itself inside started(): still report it
                if spec.restart is not Restart.PERMANENT:
                    return
                self._count_restart(spec, None)
        finally:
            self._children.pop(spec.name, None)
            self.system._unregister(spec.name, reason)

    async def _incarnation(
        self, spec: ChildSpec, ref: LocalRef, report_started: Callable[[], None]
    ) -> None:
        actor = spec.factory()
        async with trio.open_nursery() as nursery:
            ctx = Context(self.system, ref, ref.mailbox, nursery)
            with ctx._stop_scope:
                await actor.started(ctx)
                report_started()
                await actor.run(ctx)
            nursery.cancel_scope.cancel()

    def _count_restart(self, spec: ChildSpec, exc: BaseException | None) -> None:
        exceeded = self._intensity.record(trio.current_time())
        self._restarts += 1
        if exceeded:
            error = EscalationError(
                f"supervisor {self.name!r}: child {spec.name!r} restarted more than "
                f"{self.max_restarts} times in {self.within}s; giving up and escalating"
            )
            raise error from exc


def _unwrap(exc: BaseException) -> BaseException:
    """The single error inside nested one-exception groups (an actor's nursery wraps it)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
