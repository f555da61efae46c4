"""Dispatch: queued tasks to free slots, suspects alone, prefetch backlogs and reclaim."""

from __future__ import annotations

import logging

import trio

from actors import ActorRef, Context

from .._messages import Reclaim, Run, RunTasks
from .._model import TaskStatus
from .._protocol import RateWake, Started
from ._pool import WorkerSlot
from ._records import TaskRecord
from ._state import ControlPlaneState

log = logging.getLogger("fastworker.control_plane")


class Dispatch(ControlPlaneState):
    """Hands queued tasks to workers' free slots (see ``_dispatch``)."""

    def _dispatch(self) -> None:
        """Queued tasks to workers: suspects alone first, free slots, then prefetch backlogs.

        -- prefetch (issue 15) --
        A subworker that announced ``prefetch`` keeps up to that many attempts ready
        beyond its slots (run there in priority order), so a slot does not wait a round
        trip between two tasks. Only tasks known to be short are prefetched
        (``prefetch_below``), so a long task never waits behind another worker's
        backlog. Priority stays strict: while a queued task waits for a slot, no worker
        keeps less urgent work unstarted. Those workers are asked to give it back
        (``Reclaim``), and the queued task takes the first slot that frees anywhere. A
        task is only prefetched if nothing less urgent is queued (else a slot freeing
        elsewhere would start that one first). A worker running a suspect alone or
        emptying for one gets no prefetch, and gives its backlog back.
        """
        if self.draining:
            return
        batches: dict[str, list[Run]] = {}
        self._batches = batches
        pool = self.pool
        if self._suspects:
            self._dispatch_suspects()
        if len(self.queue):
            workers = pool.dispatchable()
            router = self.queue
            router.begin_pass()
            pool.fill(workers, router.pop_for, self._start)
            if len(self.queue) and pool.may_backlog(workers):
                self._prefetch(workers)
            router.end_pass()
        for worker in pool.reclaim_backlogs():
            worker.ref.tell_nowait(Reclaim(-1))
        for worker_id, runs in batches.items():
            self._send_runs(pool.workers[worker_id], runs)
        if self.observer is not None:
            self._observed_runs.extend(batches.items())

    def _start(self, rec: TaskRecord, worker: WorkerSlot) -> None:
        """Start ``rec`` on ``worker``, whose slot the pool took: a Run in this pass's batch."""
        rec.status = TaskStatus.RUNNING
        rec.attempts += 1
        rec.worker = worker.id
        batches = self._batches
        runs = batches.get(worker.id)
        if runs is None:
            runs = batches[worker.id] = []
        runs.append(
            Run(rec.id, rec.name, rec.payload, rec.attempts, rec.spec.timeout, rec.priority)
        )
        if self.events.subscribers:
            self.events.task_changed(rec)

    def _send_runs(self, worker: WorkerSlot, runs: list[Run]) -> None:
        """Hand runs to a worker; in-process runs are journaled first (see Journal.Started).

        A subworker's runs go straight to its executor over the link (one hop less than
        through its SubworkerConnection, which stays the fallback).
        """
        if worker.local and self.journal is not None:
            # A task run in this very process may crash it: the mark is durable before the
            # task starts, so a restart knows it was running and counts the loss.
            self.journal.tell_nowait(Started([run.id for run in runs], worker.ref, RunTasks(runs)))
        elif worker.runs_to is worker.ref:
            worker.ref.tell_nowait(RunTasks(runs))
        else:
            try:
                worker.runs_to.tell_nowait(RunTasks(runs))
            except Exception as exc:  # the link is closing, full or the batch too big:
                log.debug("direct RunTasks to %s failed (%s); via its connection", worker.id, exc)
                worker.ref.tell_nowait(RunTasks(runs))  # handled as before the shortcut

    def _prefetch(self, workers: list[WorkerSlot]) -> None:
        """After the free slots: backlogs for short tasks, or reclaim (see ``_dispatch``).

        Only for a worker that takes from a single class of tasks without limits (the
        usual cluster); routed or rate- and concurrency-limited work goes by credits.
        """
        router = self.queue
        pool = self.pool
        now = trio.current_time()
        for worker in workers:
            classes = router.classes_for(worker.id)
            if len(classes) != 1 or classes[0].limiter is not None:
                continue
            queue = classes[0].queue
            while True:
                head = queue.peek(now)
                if head is None:
                    break
                # A queued task waits for a slot: no less urgent work may wait unstarted.
                asked = pool.reclaim_less_urgent(head[1], workers)
                if asked:
                    for other in asked:
                        other.ref.tell_nowait(Reclaim(head[1]))
                    return
                if pool.backlog_full(worker):
                    break
                rec = router.pop_for(worker.id)
                if rec is None:
                    break
                if not self._prefetchable(rec, queue.depths()):
                    router.push_front(rec)
                    break
                pool.add_to_backlog(worker, rec)
                self._start(rec, worker)

    def _prefetchable(self, rec: TaskRecord, depths: list[int]) -> bool:
        """True if ``rec`` may wait in a worker's backlog.

        Its runs are known to be short; it may be redelivered (an attempt lost with its
        worker before it started still counts as in flight there); and nothing less
        urgent is queued (a slot freeing elsewhere would start that one first).
        """
        seconds = self._run_time.get(rec.name)
        return (
            seconds is not None
            and seconds < self.config.prefetch_below
            and rec.spec.redeliver
            and not any(depths[level] for level in range(rec.priority + 1, len(depths)))
        )

    def _dispatch_suspects(self) -> None:
        """Start waiting suspects, each alone on an empty worker (the pool reserves workers
        for the others: see ``WorkerPool.place_suspects``)."""
        suspects = self._suspects
        suspects[:] = [r for r in suspects if r.status is TaskStatus.QUEUED and r.suspect]
        note_started = self.queue.note_started
        for rec, worker in self.pool.place_suspects(suspects, self.queue.can_run):
            self._start(rec, worker)
            note_started(rec)

    def _suspect(self, rec: TaskRecord) -> None:
        """Queue a task that was in flight on a lost worker: it will run alone."""
        rec.suspect = True
        rec.status = TaskStatus.QUEUED
        suspects = self._suspects
        suspects.append(rec)
        suspects.sort(key=lambda r: r.priority)
        if self.events.subscribers:
            self.events.task_changed(rec)

    def _wake_for_rate_limits(self, ctx: Context) -> None:
        """A rate-limited task waits: dispatch again when its window lets it start."""
        at = self.queue.next_wake
        self.queue.next_wake = None  # consumed: the next pass sets it again if still held
        if at is None or (self._wake_at is not None and self._wake_at <= at):
            return
        self._wake_at = at
        ctx.nursery.start_soon(self._wake_timer, ctx.self, at)

    async def _wake_timer(self, me: ActorRef, at: float) -> None:
        await trio.sleep_until(at)
        if self._wake_at == at:
            self._wake_at = None
        await me.tell(RateWake())
