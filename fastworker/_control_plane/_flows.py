"""The control plane's workflows: the graphs it holds and how they meet its task table.

``FlowTable`` belongs to the ControlPlane actor (same task, no locking). Its members
are ordinary tasks admitted through the control plane's own admission path, so
routing, queues, limits and priorities apply to each. When a member's outcome is
final the control plane calls ``member_finished``; the graph (``_workflow``) says
what to start or cancel next, and the flow's own outcome goes to the result cache
under the flow's id like any task's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from actors import ActorRef, Context, Reply

from .._clock import WallClock
from .._errors import FastWorkerError, PayloadTooLarge, QueueFull, ShuttingDown, TaskNotRegistered
from .._messages import Outcome, Submission, TaskInfo, WireError
from .._protocol import AcceptFlow, JournaledFlow, JournaledTask, Persist, Subscribe
from .._registry import Registry
from .._workflow import NOTHING, SEPARATOR, Effects, FlowOutcome, InvalidFlow, Start, Workflow
from ._events import EventFeed
from ._task_table import TaskTable

log = logging.getLogger("fastworker.control_plane")


class FlowHost(Protocol):
    """What the workflows use of the control plane that holds them (the ControlPlane).

    A protocol rather than an import of the actor: the actor's state builds its
    FlowTable, so the two modules would import each other.
    """

    registry: Registry
    announced: dict[str, TaskInfo]
    cache: ActorRef
    clock: WallClock
    draining: bool
    tasks: TaskTable
    events: EventFeed
    _outcomes: list[Outcome]
    _to_journal: list[JournaledTask]
    _self_ref: ActorRef | None

    @property
    def journal(self) -> ActorRef | None: ...

    def _known(self, name: str) -> bool: ...
    def _context(self) -> Context: ...
    def _flush_outcomes(self) -> None: ...
    def _accept_group(
        self, group: list[Submission], watcher: ActorRef | None
    ) -> int | list[str]: ...
    def _cancel(
        self, task_id: str, ctx: Context, reply: Reply | None = None, *, quiet: bool = False
    ) -> bool | None: ...
    def _restore(self, tasks: list[JournaledTask], done: Iterable[str] = ()) -> None: ...


class FlowTable:
    """The workflows one control plane holds, by flow id."""

    def __init__(self, control_plane: FlowHost) -> None:
        self.cp = control_plane
        self.flows: dict[str, Workflow] = {}
        self._cancel_replies: dict[str, list[Reply]] = {}
        self._started_at: dict[str, float] = {}
        self._to_cancel: list[str] = []
        """Members to cancel once the current message is handled (see settle)."""
        self._unconfirmed: set[str] = set()
        """Flows accepted with a journal whose first commit has not been confirmed."""
        self.accepted = 0
        self.finished = 0

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self.flows

    def __len__(self) -> int:
        return len(self.flows)

    def _owner(self, member_id: str) -> tuple[Workflow, int] | None:
        prefix, sep, tail = member_id.rpartition(SEPARATOR)
        flow = self.flows.get(prefix) if sep else None
        if flow is None:
            return None
        index = flow.task_index(tail)
        return (flow, index) if index is not None else None

    def knows(self, task_id: str) -> bool:
        """A live flow's id, or the id of one of its members (started or not)."""
        return task_id in self.flows or self._owner(task_id) is not None

    # -- accepting ------------------------------------------------------------------
    def accept(self, msg: AcceptFlow) -> None:
        """Build the graph, admit its first members; answer once accepted."""
        cp = self.cp
        sub = msg.flow
        reply = msg.reply
        if sub.id in self.flows or cp.tasks.known(sub.id):
            # A resubmission after a dropped link: accepted already, nothing runs twice.
            self._watch([sub.id], msg.watcher)
            if reply is not None:
                reply.resolve(1)
            return
        try:
            if cp.draining:
                raise ShuttingDown("the control plane is shutting down and takes no new work")
            try:
                flow = Workflow(sub.id, sub.nodes)
            except InvalidFlow as exc:
                raise FastWorkerError(f"malformed workflow {sub.id!r}: {exc}") from None
            self._check_names(flow)
            self.flows[flow.id] = flow
            self._started_at[flow.id] = cp.clock.now()
            fx = flow.start()
            try:
                self._admit(flow, fx.starts, first=True)
            except BaseException:
                del self.flows[flow.id]
                del self._started_at[flow.id]
                raise
        except (FastWorkerError, QueueFull, ShuttingDown, PayloadTooLarge) as exc:
            if reply is not None:
                reply.fail(exc)
            return
        self.accepted += 1
        self._watch([flow.id], msg.watcher)
        self._event(flow.id, "running" if fx.starts else "pending", flow.kind)
        if cp.journal is not None:
            tasks, cp._to_journal = cp._to_journal, []
            replies: list[tuple[Reply, Any]] = [(reply, 1)] if reply is not None else []
            if tasks:
                self._unconfirmed.add(flow.id)
            cp.journal.tell_nowait(
                Persist(tasks, replies, cp._self_ref, flows=[(flow.id, sub.nodes)])
            )
        elif reply is not None:
            reply.resolve(1)
        self._apply(flow, attrs.evolve(fx, starts=[]))

    def _check_names(self, flow: Workflow) -> None:
        known_name = self.cp._known  # the registry's names and those workers announced
        for name in set(flow.names):
            if name and not known_name(name):
                known = ", ".join(sorted(set(self.cp.registry.names()) | set(self.cp.announced)))
                raise TaskNotRegistered(
                    f"workflow member {name!r} is not a registered task (known tasks: "
                    f"{known or 'none'}); nothing of the workflow was queued"
                )

    def _watch(self, ids: list[str], watcher: ActorRef | None) -> None:
        if watcher is not None:
            self.cp._flush_outcomes()
            self.cp.cache.tell_nowait(Subscribe(ids, watcher))

    # -- the graph's effects --------------------------------------------------------
    def _admit(self, flow: Workflow, starts: list[Start], first: bool = False) -> None:
        """Members become tasks through the control plane's own admission.

        Members of an accepted flow are admitted while draining too (they are not
        dispatched; with a journal they run after the restart). On the first admission
        a refusal (QueueFull...) refuses the flow; later it fails the flow.
        """
        if not starts:
            return
        cp = self.cp
        subs = [Submission(s.id, s.name, s.payload, s.priority, None, s.countdown) for s in starts]
        draining, cp.draining = cp.draining, False
        try:
            cp._accept_group(subs, None)
        except (QueueFull, PayloadTooLarge, ShuttingDown, TaskNotRegistered) as exc:
            if first:
                raise
            error = WireError(type(exc).__name__, f"workflow {flow.id}: {exc}")
            for start in starts:
                self._apply(flow, flow.finished(start.index, "failure", None, error))
            return
        finally:
            cp.draining = draining
        for start in starts:
            if start.id not in cp.tasks and start.index in flow.active:
                # Refused one by one (an unknown name: its failure outcome is out already).
                error = WireError(
                    "TaskNotRegistered", f"no task named {start.name!r} is registered"
                )
                self._apply(flow, flow.finished(start.index, "failure", None, error))
        if not first and cp.journal is not None and cp._to_journal:
            # The outcome that started these members is recorded first, so a replay never
            # finds a member row whose predecessor has no result.
            cp._flush_outcomes()
            tasks, cp._to_journal = cp._to_journal, []
            cp.journal.tell_nowait(Persist(tasks, [], cp._self_ref))

    def _apply(self, flow: Workflow, fx: Effects) -> None:
        if fx is NOTHING:
            return
        cp = self.cp
        if fx.starts:
            self._admit(flow, fx.starts)
        if fx.skipped:
            now = cp.clock.now()
            why = WireError("TaskCancelled", f"never started: workflow {flow.id} ended before it")
            for member_id in fx.skipped:
                index = flow.index_of(member_id)
                name = flow.name_of(index) if index is not None else ""
                cp._outcomes.append(
                    Outcome(member_id, "cancelled", 0, error=why, completed_at=now, name=name)
                )
                self._event(member_id, "cancelled", name)
        # Cancelled after the message at hand (settle): the control plane may be in the
        # middle of a loop over its tasks, which must not change under it.
        self._to_cancel.extend(fx.cancels)
        if fx.done is not None:
            self._publish(flow, fx.done)

    def settle(self) -> None:
        """Cancel the members decided flows left active (called after each batch).

        Running members go through their cancel scopes (the same bounded wait as a
        single task); their outcomes come back through member_finished.
        """
        cp = self.cp
        while self._to_cancel:
            ids, self._to_cancel = self._to_cancel, []
            for member_id in ids:
                if member_id in cp.tasks:
                    cp._cancel(member_id, cp._context(), quiet=True)

    def member_finished(self, task_id: str, outcome: Outcome) -> None:
        """The control plane finished ``task_id`` for good: move its flow on."""
        owner = self._owner(task_id)
        if owner is None:
            return
        flow, index = owner
        self._apply(flow, flow.finished(index, outcome.status, outcome.value, outcome.error))

    def durable(self, ids: list[str]) -> None:
        """Journaled members are on disk (their flow's acceptance is, with the first)."""
        if self._unconfirmed:
            for task_id in ids:
                owner = self._owner(task_id)
                if owner is not None:
                    self._unconfirmed.discard(owner[0].id)

    def not_durable(self, ids: list[str], reason: str) -> None:
        """The journal refused these members (the control plane dropped their tasks).

        A flow whose acceptance itself was refused is dropped (its client was told);
        a later member refused fails its flow with the journal's reason.
        """
        error = WireError("JournalWriteFailed", reason)
        for task_id in ids:
            owner = self._owner(task_id)
            if owner is None:
                continue
            flow, index = owner
            if flow.id in self._unconfirmed:
                self._unconfirmed.discard(flow.id)
                del self.flows[flow.id]
                self._started_at.pop(flow.id, None)
                for member_id in [flow.member_id(i) for i in flow.active]:
                    self.cp.tasks.pop(member_id, None)
                continue
            self._apply(flow, flow.finished(index, "failure", None, error))

    def _publish(self, flow: Workflow, done: FlowOutcome) -> None:
        cp = self.cp
        del self.flows[flow.id]
        started = self._started_at.pop(flow.id, None)
        self.finished += 1
        recent = cp.tasks.recent
        recent[flow.id] = None
        cp._outcomes.append(
            Outcome(
                id=flow.id,
                status=done.status,
                attempt=1,
                value=done.value,
                error=done.error,
                started_at=started,
                completed_at=cp.clock.now(),
                name=flow.kind,
            )
        )
        for reply in self._cancel_replies.pop(flow.id, ()):
            reply.resolve(done.status == "cancelled")
        self._event(flow.id, done.status, flow.kind)

    def _event(self, task_id: str, status: str, name: str) -> None:
        cp = self.cp
        cp.events.task_ended(task_id, status, name, None)

    # -- queries and cancellation ---------------------------------------------------
    def status(self, flow_id: str) -> str | None:
        """The status value of an unfinished flow, or None."""
        flow = self.flows.get(flow_id)
        if flow is None:
            owner = self._owner(flow_id)
            if owner is not None and owner[0].pending(owner[1]):
                return "pending"  # a member whose turn has not come
            return None
        tasks = self.cp.tasks

        def member_status(member_id: str) -> str | None:
            rec = tasks.get(member_id)
            return rec.status.value if rec is not None else None

        return flow.status(member_status)

    def describe(self, flow_id: str) -> list[tuple[str, str, str]] | None:
        """(member id, task name, status) of an unfinished flow's members (for views).

        An active member's status is its task's (queued, running, ...); a member not
        started is "pending"; a finished one "success" or "failed" (its result has the
        detail); one that never started because the flow ended, "cancelled".
        """
        flow = self.flows.get(flow_id)
        if flow is None:
            return None
        tasks = self.cp.tasks
        described = []
        for member_id, name, state in flow.members():
            if state == "active":
                rec = tasks.get(member_id)
                state = rec.status.value if rec is not None else "pending"
            elif state == "skipped":
                state = "cancelled"
            described.append((member_id, name, state))
        return described

    def cancel(self, flow_id: str, reply: Reply) -> bool | None:
        """Cancel every unfinished member; ``reply`` answers once the flow is over.

        Returns False (answer now) if the flow's outcome was already decided.
        """
        flow = self.flows[flow_id]
        fx = flow.cancel(WireError("TaskCancelled", "the workflow was cancelled by request"))
        if fx is None:
            return False
        self._cancel_replies.setdefault(flow_id, []).append(reply)
        self._apply(flow, fx)
        return None

    # -- journal replay -------------------------------------------------------------
    def restore(self, flows: Iterable[JournaledFlow]) -> None:
        """Rebuild replayed flows: recorded results are fed back, members still
        unfinished are queued again, members never started are started now."""
        cp = self.cp
        for journaled in flows:
            if journaled.id in self.flows:
                continue
            try:
                flow = Workflow(journaled.id, journaled.nodes)
            except InvalidFlow as exc:
                log.error("journal: workflow %s cannot be rebuilt (%s); dropped", journaled.id, exc)
                continue
            self.flows[flow.id] = flow
            self._started_at[flow.id] = cp.clock.now()
            results = {o.id: o for o in journaled.results}
            tasks = {t.id: t for t in journaled.tasks}
            steps = deque([flow.start()])
            while steps:
                fx = steps.popleft()
                fresh = []
                for start in fx.starts:
                    outcome = results.get(start.id)
                    if outcome is not None:
                        steps.append(
                            flow.finished(start.index, outcome.status, outcome.value, outcome.error)
                        )
                    elif start.id in tasks:
                        cp._restore([tasks[start.id]])
                    else:
                        fresh.append(start)
                if flow.id in self.flows and fx is not NOTHING:
                    self._apply(flow, attrs.evolve(fx, starts=fresh))
            if flow.id in self.flows:
                log.info(
                    "journal: workflow %s resumed (%d members active)", flow.id, len(flow.active)
                )
