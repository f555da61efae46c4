"""Admission: accepting submissions, unique keys, restoring from the journal, durability.

A submission is checked (draining, payload size, known task, queue bound), deduplicated
by id and unique key, then queued, scheduled, or (with a journal) held until the
journal says it is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import trio

from actors import ActorRef, Reply

from .._errors import PayloadTooLarge, QueueFull, ShuttingDown, TaskNotRegistered
from .._messages import Submission, TaskInfo, WireError
from .._model import TaskStatus
from .._protocol import (
    Accept,
    JournaledTask,
    NotDurable,
    Persist,
    ScheduleAt,
    Subscribe,
    Tick,
)
from ._records import TaskRecord
from ._state import ControlPlaneState

log = logging.getLogger("fastworker.control_plane")


class Admission(ControlPlaneState):
    """Accepts, restores and times tasks into the task table."""

    def _unknown_names(self, names: set[str]) -> TaskNotRegistered:
        known = sorted(set(self.registry.names()) | set(self.announced))
        listed = ", ".join(known[:50]) + (" ..." if len(known) > 50 else "") or "none"
        missing = ", ".join(repr(n) for n in sorted(names))
        return TaskNotRegistered(
            f"no task named {missing} is registered on the control plane or announced by any "
            f"worker (known tasks: {listed}); check the name, or start a worker that has it "
            "(a subworker with the right --tasks modules); nothing was queued"
        )

    def _announce(self, infos: list[TaskInfo], names: Iterable[str]) -> None:
        """Remember the names a worker has, with their options; re-route changed ones."""
        by_name = {info.name: info for info in infos}
        new: list[TaskInfo] = []
        for name in names:
            if self.registry.lookup(name) is not None:
                continue
            info = by_name.get(name, TaskInfo(name))
            old = self.announced.get(name)
            if old == info:
                continue
            self.announced[name] = info
            new.append(info)
            if old is not None:
                log.warning(
                    "task %r: a worker announced other options (%s) than before (%s); "
                    "the newest apply",
                    name,
                    info,
                    old,
                )
                self.queue.policy_changed(name)
        self.journal_notes.announced(new)

    def _accept(self, msg: Accept) -> None:
        durable: list[tuple[Reply, Any]] = []
        for group, reply, watcher in msg.groups:
            try:
                accepted = self._accept_group(group, watcher)
            except (QueueFull, ShuttingDown, PayloadTooLarge, TaskNotRegistered) as exc:
                if reply is not None:
                    reply.fail(exc)
                continue
            if reply is None:
                continue
            if self.journal is None:
                reply.resolve(accepted)
            else:
                durable.append((reply, accepted))
        if self.journal is not None and (durable or self._to_journal):
            # Acknowledged only once on disk: the journal answers after its commit.
            tasks, self._to_journal = self._to_journal, []
            self.journal.tell_nowait(Persist(tasks, durable, self._self_ref))

    def _accept_group(self, group: list[Submission], watcher: ActorRef | None) -> int | list[str]:
        """Accept a group: its size, or (with unique keys) the id each submission maps to."""
        if self.draining:
            raise ShuttingDown("the control plane is shutting down and takes no new work")
        # A resubmission (after a dropped link) is idempotent: ids already accepted,
        # running or recently finished are not taken again.
        new = self.tasks.fresh(group)
        limit = self.config.max_payload
        for sub in new:
            if len(sub.payload) > limit:
                # Clients check this too; a client with a raised limit must not be able
                # to park oversized data in this process.
                raise PayloadTooLarge(
                    f"the arguments of task {sub.name!r} are {len(sub.payload)} bytes packed, "
                    f"over the control plane's {limit}-byte limit: pass a reference (a path, "
                    "a URL, a database key) instead of the data"
                )
        policies: dict[str, TaskInfo] = {}
        policy = self._policy
        known = self._known
        for name in {s.name for s in new}:
            if known(name):
                policies[name] = policy(name)
        if len(policies) < len({s.name for s in new}):
            raise self._unknown_names({s.name for s in new} - set(policies))
        new, ids = self.tasks.dedupe(group, new)
        self.tasks.check_room(len(new))
        if watcher is not None and group:
            self._flush_outcomes()
            watched = ids if ids is not None else [s.id for s in group]
            self.cache.tell_nowait(Subscribe(list(dict.fromkeys(watched)), watcher))
        if self.observer is not None:
            self._observed.extend(new)
        now = trio.current_time()
        wall = self.clock.now()
        scheduled: list[tuple[str, float]] = []
        add = self.tasks.add
        for sub in new:
            spec = policies[sub.name]
            priority = sub.priority if sub.priority is not None else spec.priority
            rec = TaskRecord(sub.id, sub.name, sub.payload, priority, spec, now)
            add(rec, sub.unique_key)
            eta = sub.eta if sub.countdown is None else wall + sub.countdown
            if self.journal is not None:
                # It runs only once it is on disk (Durable): a failed commit refuses it,
                # and a refused task must never have run.
                self._to_journal.append(
                    JournaledTask(
                        sub.id, sub.name, sub.payload, priority, eta, unique_key=sub.unique_key
                    )
                )
                self.tasks.await_durable(
                    sub.id, self.clock.to_trio(eta) if eta is not None and eta > wall else None
                )
                continue
            if eta is not None and eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((sub.id, self.clock.to_trio(eta)))
                self._event(rec)
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(new)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))
        return ids if ids is not None else len(group)

    def _restore(self, tasks: list[JournaledTask], done: Iterable[str] = ()) -> None:
        """Queue (or schedule) tasks replayed from the journal, before serving anyone."""
        self.tasks.recent.add_all(done)
        now = trio.current_time()
        wall = self.clock.now()
        scheduled: list[tuple[str, float]] = []
        for task in tasks:
            if task.id in self.tasks:
                continue
            if not self._known(task.name):
                # A journal from before routing remembered no names: the task waits for a
                # worker that has it, as it would have been accepted then.
                self._announce([], [task.name])
            spec = self._policy(task.name)
            rec = TaskRecord(task.id, task.name, task.payload, task.priority, spec, now)
            rec.attempts = task.attempts
            rec.losses = task.losses
            self.tasks.add(rec, task.unique_key)
            if task.losses:
                if task.losses >= self._max_losses(rec) or not rec.spec.redeliver:
                    self.quarantined += 1
                    log.error(
                        "task %s (%s) was running when this process died %d times: it fails "
                        "with WorkerLost and is not run again",
                        rec.name,
                        rec.id,
                        task.losses,
                    )
                    self._terminal(
                        rec,
                        TaskStatus.FAILURE,
                        WireError(
                            "WorkerLost",
                            f"task {rec.name!r} was running when its process died "
                            f"{task.losses} times: it is not run again (max_worker_losses)",
                        ),
                    )
                else:
                    self._suspect(rec)
                continue
            if task.eta is not None and task.eta > wall:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((task.id, self.clock.to_trio(task.eta)))
            else:
                self._enqueue(rec, now=now)
        self.submitted += len(tasks)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))

    def _durable(self, ids: list[str]) -> None:
        """Journaled tasks are on disk: queue or schedule them now."""
        durable = self.tasks.durable
        now = trio.current_time()
        scheduled: list[tuple[str, float]] = []
        for task_id in ids:
            found = durable(task_id)
            if found is None:
                continue
            rec, at = found
            if at is not None and at > now:
                rec.status = TaskStatus.SCHEDULED
                scheduled.append((task_id, at))
                self._event(rec)
            else:
                self._enqueue(rec, now=now)
        if scheduled:
            self._scheduler().tell_nowait(ScheduleAt(scheduled))

    def _not_durable(self, msg: NotDurable) -> None:
        """The journal could not record these tasks: they were refused and never run."""
        for task_id in msg.ids:
            rec = self.tasks.refuse(task_id)  # refused: as if never submitted
            if rec is None:
                continue
            self.submitted -= 1
            self.refused += 1
            if self.observer is not None:
                self._observed_requeued.append((task_id, rec.name, "refused"))

    def _due(self, ids: Iterable[str]) -> None:
        for task_id in ids:
            rec = self.tasks.get(task_id)
            if rec is not None and rec.status in (TaskStatus.SCHEDULED, TaskStatus.RETRYING):
                self._enqueue(rec)

    def _tick(self, tick: Tick) -> None:
        if self.draining:
            return
        active = self.tasks.periodic_running(tick.name)
        if active is not None:
            self.skipped_ticks += 1
            log.info(
                "periodic task %r: previous run %s still active, tick skipped", tick.name, active
            )
            return
        if self.registry.lookup(tick.name) is None:
            return
        spec = self._policy(tick.name)
        task_id = f"{tick.name}@{int(tick.fire_at)}-{next(self._periodic_seq)}"
        rec = TaskRecord(
            task_id, tick.name, b"\x92\x90\x80", spec.priority, spec, trio.current_time()
        )
        rec.periodic = True
        if self.observer is not None:
            self._observed_requeued.append((task_id, tick.name, "periodic"))
        self.tasks.add(rec)
        self.submitted += 1
        self._enqueue(rec)
