"""The worker pool: the workers table and its credits, pure and trio-free.

It answers and decides the questions about workers: who joined and left (and what ran
there), free slots (credits), which workers a pass hands work to (round robin; the
Router picks each worker's task), which workers run a suspect alone or empty for one
(at most half of them, at least one), what waits in prefetch backlogs and what to ask
back. It sends nothing: the control plane's parts call it and send what it decides
(tests/fastworker/test_worker_pool.py tests it directly).

Slot accounting: ``free`` is a worker's credits. Taking a slot for a task (``fill``,
``place_suspects``, ``add_to_backlog``) lowers it and records the task in ``running``;
a worker's report (``credit``) gives credits back; ``release`` forgets a task that no
longer runs there (its credit comes with the worker's report, if ever). ``free < 0``
means that many attempts wait in the worker's prefetch backlog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from typing import Protocol, TypeVar

import attrs

from actors import ActorRef

from .._messages import WireWorkerStats
from .._names import LOCAL_WORKER
from .._protocol import WorkerCompleted


class _Task(Protocol):
    """A task as the pool sees it: its id, name (routing) and priority (backlogs)."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def priority(self) -> int: ...


T = TypeVar("T", bound=_Task)


class WorkerSlot:
    """A worker as the control plane sees it: its ref, slots and what it runs."""

    __slots__ = (
        "accepting",
        "completed",
        "free",
        "id",
        "local",
        "prefetch",
        "ref",
        "reserved",
        "retiring",
        "running",
        "runs_to",
        "slots",
        "solo",
        "waiting",
    )

    def __init__(
        self, id: str, ref: ActorRef, slots: int, busy: int, local: bool, prefetch: int = 0
    ) -> None:
        self.id = id
        self.ref = ref
        self.runs_to = ref
        self.slots = slots
        # free < 0: that many dispatched attempts wait in the worker's prefetch backlog.
        self.prefetch = prefetch
        # What the worker's backlog most likely holds, {id: (priority, order)}: attempts
        # sent past its free slots, until a freed slot starts the most urgent of them.
        self.waiting: dict[str, tuple[int, int]] = {}
        self.free = max(0, slots - busy)
        self.local = local
        self.accepting = True
        self.retiring = False
        self.running: set[str] = set()
        """Tasks in flight here: running, or waiting in its prefetch backlog."""
        self.completed = 0
        self.solo: str | None = None
        """The suspect this worker runs alone (nothing else is sent to it meanwhile)."""
        self.reserved = False
        """Emptying for a waiting suspect: no new work until its running tasks end."""

    def backlog_started(self, msg: WorkerCompleted) -> None:
        """Update what this worker most likely still holds unstarted after ``msg``."""
        waiting = self.waiting
        slots_freed = msg.credits - len(msg.returned)  # returned ones held no slot
        for task_id, _ in msg.returned:
            waiting.pop(task_id, None)
        for outcome in msg.outcomes:
            if waiting.pop(outcome.id, None) is not None:
                slots_freed -= 1
        # Each freed slot started the most urgent (then oldest) attempt of the backlog.
        for _ in range(min(slots_freed, len(waiting))):
            del waiting[min(waiting, key=waiting.__getitem__)]

    def release(self, task_id: str) -> None:
        """``task_id`` no longer runs here (lost, returned or given up on)."""
        self.running.discard(task_id)
        if self.solo == task_id:
            self.solo = None

    def finished(self, task_id: str) -> None:
        """``task_id`` ended here with an outcome: released, and counted as completed."""
        self.running.discard(task_id)
        if self.solo == task_id:
            self.solo = None
        self.completed += 1


@attrs.frozen
class PoolStatistics:
    """A snapshot of the pool (``WorkerPool.statistics``)."""

    workers: list[WireWorkerStats]
    """Each worker's slots, credits, tasks in flight and completions (ClusterStats)."""
    running: int
    """Tasks in flight on all workers (backlogs included)."""
    backlogged: int
    """Attempts most likely waiting unstarted in prefetch backlogs."""
    solo: int
    """Workers running a suspect alone."""
    reserved: int
    """Workers emptying for a waiting suspect."""


class WorkerPool:
    """The workers table: slots and credits, suspects alone, prefetch backlogs.

    ``local_name`` is the in-process executor's worker id: it takes work only while no
    other worker (that is not retiring) is in the pool.
    """

    __slots__ = ("_order", "local_name", "workers")

    def __init__(self, local_name: str = LOCAL_WORKER) -> None:
        self.local_name = local_name
        self.workers: dict[str, WorkerSlot] = {}
        """worker id -> slot, in the order they joined (read it; change it through the pool)."""
        self._order = count()
        """The order attempts were put in backlogs (the oldest of a level starts first)."""

    def __len__(self) -> int:
        return len(self.workers)

    def __contains__(self, worker_id: object) -> bool:
        return worker_id in self.workers

    def __iter__(self) -> Iterator[WorkerSlot]:
        return iter(self.workers.values())

    def __getitem__(self, worker_id: str) -> WorkerSlot:
        return self.workers[worker_id]

    def get(self, worker_id: str | None) -> WorkerSlot | None:
        """The worker with this id, or None (also for None: a task not on any worker)."""
        return None if worker_id is None else self.workers.get(worker_id)

    # -- joining and leaving --------------------------------------------------------
    def join(
        self,
        worker_id: str,
        ref: ActorRef,
        slots: int,
        *,
        busy: int = 0,
        local: bool = False,
        prefetch: int = 0,
        runs_to: ActorRef | None = None,
    ) -> WorkerSlot:
        """Add a worker with ``slots`` of which ``busy`` already run something.

        Its credits are its free slots; ``prefetch`` attempts may wait beyond them;
        ``runs_to`` is where its runs go (default ``ref``).

        Raises:
            ValueError: a worker with this id is in the pool: ``leave`` it first (what
                ran there must be handled before a new worker takes its id).
        """
        if worker_id in self.workers:
            raise ValueError(f"worker {worker_id!r} is in the pool already: leave it first")
        worker = self.workers[worker_id] = WorkerSlot(worker_id, ref, slots, busy, local, prefetch)
        if runs_to is not None:
            worker.runs_to = runs_to
        self._update_local()
        return worker

    def leave(self, worker_id: str) -> set[str] | None:
        """Remove a worker; the tasks that were in flight there (running or backlogged).

        None if no such worker is in the pool.
        """
        worker = self.workers.pop(worker_id, None)
        if worker is None:
            return None
        self._update_local()
        return worker.running

    def retire(self, worker_id: str) -> bool:
        """The worker takes no new work (it drains); False if it is not in the pool."""
        worker = self.workers.get(worker_id)
        if worker is None:
            return False
        worker.accepting = False
        worker.retiring = True
        self._update_local()
        return True

    def _update_local(self) -> None:
        """The local executor takes work only while no subworker is connected."""
        local = self.workers.get(self.local_name)
        if local is not None:
            local.accepting = not any(not w.local and not w.retiring for w in self.workers.values())

    # -- credits --------------------------------------------------------------------
    def credit(self, msg: WorkerCompleted) -> WorkerSlot | None:
        """A worker's report: its credits back (never over its slots), its backlog updated.

        Returns the worker (None if it is not in the pool); the caller calls its
        ``finished`` or ``release`` for each task the report ends.
        """
        worker = self.workers.get(msg.id)
        if worker is not None:
            worker.free = min(worker.slots, worker.free + msg.credits)
            if worker.waiting:
                worker.backlog_started(msg)
        return worker

    def release(self, worker_id: str | None, task_id: str) -> None:
        """``task_id`` no longer runs on ``worker_id`` (None or gone: nothing to do)."""
        worker = None if worker_id is None else self.workers.get(worker_id)
        if worker is not None:
            worker.release(task_id)

    def running_count(self) -> int:
        """Tasks in flight on all workers (backlogs included)."""
        return sum(len(w.running) for w in self.workers.values())

    # -- handing out work -----------------------------------------------------------
    def dispatchable(self) -> list[WorkerSlot]:
        """Workers that take new work: accepting, not running a suspect, not emptying."""
        return [
            w for w in self.workers.values() if w.accepting and w.solo is None and not w.reserved
        ]

    @staticmethod
    def fill(
        workers: list[WorkerSlot],
        pop: Callable[[str], T | None],
        start: Callable[[T, WorkerSlot], object],
    ) -> None:
        """Hand out the free slots of ``workers``, one task each in turn (round robin).

        ``pop(worker_id)`` picks the task for a worker (the Router: capabilities, queues,
        limits) or None if it has nothing that worker may run now; the slot is taken
        and ``start(task, worker)`` told, until no worker has a free slot or a task.
        """
        ready = [w for w in workers if w.free > 0]
        index = 0
        while ready:
            worker = ready[index % len(ready)]
            task = pop(worker.id)
            if task is None:
                # Nothing this worker may run now; others may still have work.
                ready.remove(worker)
                continue
            worker.free -= 1
            worker.running.add(task.id)
            start(task, worker)
            if worker.free == 0:
                ready.remove(worker)
            else:
                index += 1

    # -- suspects, each alone on a worker -------------------------------------------
    def place_suspects(
        self, suspects: list[T], can_run: Callable[[str, str], bool]
    ) -> list[tuple[T, WorkerSlot]]:
        """Suspects each on an empty worker, alone; reserve workers for the rest.

        ``suspects`` (most urgent first) are the waiting ones; those placed are taken
        out of it and returned with their worker, whose slot is taken and which runs
        nothing else until that suspect ends. ``can_run(worker_id, name)`` is the
        Router's capability check. A worker reserved for a suspect gets no new work
        until its running tasks have ended; at most half of the workers (at least one)
        are reserved at a time, so the rest keep serving the queue while suspects are
        tried one by one. No suspect waiting: no worker stays reserved.
        """
        if not suspects:
            for worker in self.workers.values():
                worker.reserved = False
            return []
        placed: list[tuple[T, WorkerSlot]] = []
        candidates = [
            w for w in self.workers.values() if w.accepting and w.solo is None and w.slots > 0
        ]
        for worker in candidates:
            if not suspects:
                break
            if not worker.running and worker.free > 0:
                # The most urgent suspect this worker has the task for (capability routing).
                rec = next((r for r in suspects if can_run(worker.id, r.name)), None)
                if rec is None:
                    continue
                worker.reserved = False
                suspects.remove(rec)
                worker.free -= 1
                worker.running.add(rec.id)
                worker.solo = rec.id
                placed.append((rec, worker))
        waiting = len(suspects)
        reserved = [w for w in candidates if w.reserved and w.solo is None]
        cap = max(1, len(candidates) // 2)
        if waiting > len(reserved) and len(reserved) < cap:
            # Empty the least busy workers (that can run a waiting suspect) for them.
            spare = sorted(
                (
                    w
                    for w in candidates
                    if not w.reserved
                    and w.solo is None
                    and any(can_run(w.id, r.name) for r in suspects)
                ),
                key=lambda w: len(w.running),
            )
            for worker in spare[: min(waiting, cap) - len(reserved)]:
                worker.reserved = True
        elif not waiting:
            for worker in reserved:
                worker.reserved = False
        return placed

    # -- prefetch backlogs ----------------------------------------------------------
    @staticmethod
    def backlog_full(worker: WorkerSlot) -> bool:
        """True if ``worker`` keeps no (more) attempts beyond its free slots."""
        return not worker.prefetch or worker.free <= -worker.prefetch

    def add_to_backlog(self, worker: WorkerSlot, task: _Task) -> None:
        """Send ``task`` to ``worker`` past its free slots: it waits in its backlog."""
        worker.waiting[task.id] = (task.priority, next(self._order))
        worker.free -= 1
        worker.running.add(task.id)

    @staticmethod
    def may_backlog(workers: list[WorkerSlot]) -> bool:
        """True if any of ``workers`` keeps a backlog (or may hold one to ask back)."""
        return any(w.prefetch or w.waiting for w in workers)

    @staticmethod
    def reclaim_less_urgent(priority: int, workers: list[WorkerSlot]) -> list[WorkerSlot]:
        """Workers to ask for their unstarted attempts less urgent than ``priority``.

        Those attempts are taken off their backlog estimate at once (so they are asked
        for once); the worker returns them (``Completed.returned``), or reports them done
        if it had started them already. Empty: no less urgent work may wait unstarted.
        """
        asked: list[WorkerSlot] = []
        for worker in workers:
            waiting = worker.waiting
            if not waiting:
                continue
            less = [i for i, (level, _) in waiting.items() if level > priority]
            if less:
                for task_id in less:
                    del waiting[task_id]
                asked.append(worker)
        return asked

    def reclaim_backlogs(self) -> list[WorkerSlot]:
        """Workers to ask for their whole backlog back: each runs a suspect alone or empties.

        Their backlog estimates are cleared (each is asked once).
        """
        asked = [
            w for w in self.workers.values() if w.waiting and (w.reserved or w.solo is not None)
        ]
        for worker in asked:
            worker.waiting.clear()
        return asked

    # -- statistics -----------------------------------------------------------------
    def statistics(self) -> PoolStatistics:
        """A snapshot: each worker's figures (for ClusterStats) and the pool's totals."""
        workers = self.workers.values()
        return PoolStatistics(
            workers=[
                WireWorkerStats(w.id, w.slots, w.free, len(w.running), w.completed) for w in workers
            ],
            running=sum(len(w.running) for w in workers),
            backlogged=sum(len(w.waiting) for w in workers),
            solo=sum(1 for w in workers if w.solo is not None),
            reserved=sum(1 for w in workers if w.reserved),
        )
