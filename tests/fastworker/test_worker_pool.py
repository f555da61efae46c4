"""The control plane's worker pool, tested directly (no actor, no trio, no messages sent).

Unit tests for each question the pool answers (credits, round robin, suspects alone,
reservations, prefetch backlogs, the local executor, statistics), then a model-based
test: random joins, leaves, retirements, dispatch passes and reports, with the pool's
invariants checked after every step.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from support import examples

from fastworker._control_plane import WorkerPool, WorkerSlot
from fastworker._messages import Outcome, WireWorkerStats
from fastworker._protocol import WorkerCompleted

LOCAL = "local"


@attrs.define
class Task:
    """A task as the pool sees it."""

    id: str
    name: str = "t"
    priority: int = 2


class Ref:
    """A stand-in worker ref (the pool never sends to it)."""

    def tell_nowait(self, message: Any) -> None:
        raise AssertionError("the pool sends nothing")


def join(pool: WorkerPool, worker_id: str, slots: int, **options: Any) -> WorkerSlot:
    """Join a worker with a stand-in ref."""
    return pool.join(worker_id, Ref(), slots, **options)  # type: ignore[arg-type]


def popper(tasks: list[Task], can: dict[str, set[str]] | None = None) -> Any:
    """A stand-in Router: each worker gets the first queued task it may run."""

    def pop(worker_id: str) -> Task | None:
        for task in tasks:
            if can is None or task.name in can.get(worker_id, set()):
                tasks.remove(task)
                return task
        return None

    return pop


def fill(
    pool: WorkerPool, tasks: list[Task], can: dict[str, set[str]] | None = None
) -> list[tuple[str, str]]:
    """One pass over the dispatchable workers; (task id, worker id) in start order."""
    started: list[tuple[str, str]] = []
    pool.fill(pool.dispatchable(), popper(tasks, can), lambda t, w: started.append((t.id, w.id)))
    return started


def report(
    worker_id: str, done: list[str], credits: int, returned: tuple[str, ...] | list[str] = ()
) -> WorkerCompleted:
    """A worker's report: ``done`` finished (attempt 1), ``returned`` given back unstarted."""
    outcomes = [Outcome(task_id, "success", 1) for task_id in done]
    return WorkerCompleted(worker_id, outcomes, credits, returned=[(i, 1) for i in returned])


def everyone(worker_id: str, name: str) -> bool:
    """Every worker has every task (no capability routing)."""
    return True


# -- joining and leaving --------------------------------------------------------------
def test_a_joining_worker_has_its_free_slots_as_credits() -> None:
    """Credits are the slots not busy; a worker busier than its slots has none (not fewer)."""
    pool = WorkerPool()
    assert join(pool, "w1", 4, busy=1).free == 3
    assert join(pool, "w2", 2, busy=5).free == 0
    assert len(pool) == 2 and "w1" in pool and [w.id for w in pool] == ["w1", "w2"]


def test_an_id_in_the_pool_must_leave_before_it_joins_again() -> None:
    """A second join under one id is refused: what ran there must be handled first."""
    pool = WorkerPool()
    join(pool, "w1", 1)
    with pytest.raises(ValueError, match="leave it first"):
        join(pool, "w1", 1)
    pool.leave("w1")
    assert join(pool, "w1", 2).slots == 2


def test_leaving_returns_what_was_in_flight_there_backlog_included() -> None:
    """``leave`` answers the running and backlogged tasks; None for an unknown worker."""
    pool = WorkerPool()
    worker = join(pool, "w1", 1, prefetch=1)
    assert fill(pool, [Task("a"), Task("b")]) == [("a", "w1")]
    pool.add_to_backlog(worker, Task("b"))
    assert pool.leave("w1") == {"a", "b"}
    assert pool.leave("w1") is None
    assert "w1" not in pool


def test_the_local_executor_takes_work_only_while_no_subworker_serves() -> None:
    """Local accepts alone; not beside a subworker; again once that one retires or leaves."""
    pool = WorkerPool(LOCAL)
    local = join(pool, LOCAL, 2, local=True)
    assert local.accepting
    join(pool, "sw", 2)
    assert not local.accepting
    assert pool.dispatchable() == [pool["sw"]]
    assert pool.retire("sw")
    assert local.accepting and not pool["sw"].accepting and pool["sw"].retiring
    assert pool.dispatchable() == [local]
    join(pool, "sw2", 1)
    assert not local.accepting
    pool.leave("sw2")
    assert local.accepting
    assert not pool.retire("nobody")


# -- credits ----------------------------------------------------------------------------
def test_work_goes_only_to_free_slots_and_credits_bring_more() -> None:
    """Two slots take two tasks; a report of one done frees one credit for the third."""
    pool = WorkerPool()
    worker = join(pool, "w1", 2)
    queue = [Task("a"), Task("b"), Task("c")]
    assert fill(pool, queue) == [("a", "w1"), ("b", "w1")]
    assert worker.free == 0 and worker.running == {"a", "b"}
    credited = pool.credit(report("w1", ["a"], 1))
    assert credited is worker
    worker.finished("a")
    assert fill(pool, queue) == [("c", "w1")]
    assert worker.running == {"b", "c"} and worker.completed == 1


def test_credits_never_exceed_the_slots_and_unknown_workers_are_ignored() -> None:
    """A report with more credits than slots in use caps at the slots; a gone worker: None."""
    pool = WorkerPool()
    worker = join(pool, "w1", 2, busy=1)
    pool.credit(report("w1", [], 5))
    assert worker.free == 2
    assert pool.credit(report("gone", [], 1)) is None


def test_free_slots_are_handed_out_round_robin() -> None:
    """Tasks alternate between workers with free slots, not fill one worker first."""
    pool = WorkerPool()
    join(pool, "w1", 2)
    join(pool, "w2", 2)
    started = fill(pool, [Task(str(i)) for i in range(4)])
    assert started == [("0", "w1"), ("1", "w2"), ("2", "w1"), ("3", "w2")]


def test_a_worker_with_nothing_it_may_run_does_not_stop_the_others() -> None:
    """``pop`` giving None for one worker (capabilities) leaves the rest served."""
    pool = WorkerPool()
    join(pool, "only-a", 2)
    join(pool, "only-b", 2)
    can = {"only-a": {"a"}, "only-b": {"b"}}
    queue = [Task("1", "b"), Task("2", "b"), Task("3", "b")]
    assert fill(pool, queue, can) == [("1", "only-b"), ("2", "only-b")]
    assert [t.id for t in queue] == ["3"]


def test_release_forgets_a_task_and_ends_a_solo_run() -> None:
    """``release`` drops the task (no credit: that comes with the worker's report)."""
    pool = WorkerPool()
    worker = join(pool, "w1", 1)
    [(_, placed)] = pool.place_suspects([Task("s")], everyone)
    assert placed is worker and worker.solo == "s"
    pool.release("w1", "s")
    pool.release(None, "s")  # a task on no worker: nothing to do
    pool.release("gone", "s")
    assert worker.solo is None and worker.running == set() and worker.free == 0
    assert pool.running_count() == 0


# -- suspects -------------------------------------------------------------------------
def test_a_suspect_runs_alone_on_an_empty_worker() -> None:
    """The most urgent suspect goes to an empty worker; that worker then gets nothing else."""
    pool = WorkerPool()
    busy = join(pool, "busy", 2)
    fill(pool, [Task("x")])
    empty = join(pool, "empty", 2)
    suspects = [Task("s1", priority=0), Task("s2", priority=2)]
    placed = pool.place_suspects(suspects, everyone)
    assert [(t.id, w.id) for t, w in placed] == [("s1", "empty")]
    assert [t.id for t in suspects] == ["s2"]  # the rest still wait
    assert empty.solo == "s1" and empty.running == {"s1"} and empty.free == 1
    assert pool.dispatchable() == []  # busy empties for s2; empty runs s1 alone
    assert busy.reserved
    assert fill(pool, [Task("y")]) == []


def test_suspects_go_only_to_workers_that_have_their_task() -> None:
    """Capability routing holds for suspects too: an empty worker without the name waits."""
    pool = WorkerPool()
    join(pool, "no", 1)
    yes = join(pool, "yes", 1)
    placed = pool.place_suspects([Task("s", "a")], lambda w, name: w == "yes")
    assert [(t.id, w) for t, w in placed] == [("s", yes)]


def test_at_most_half_the_workers_empty_for_suspects_and_at_least_one() -> None:
    """Four busy workers, three waiting suspects: two reserve (the least busy); one worker
    alone still reserves for a suspect."""
    pool = WorkerPool()
    for i, load in enumerate([3, 1, 2, 1]):
        join(pool, f"w{i}", 4)
        pool.fill([pool[f"w{i}"]], popper([Task(f"{i}.{j}") for j in range(load)]), lambda *a: 0)
    suspects = [Task("s1"), Task("s2"), Task("s3")]
    assert pool.place_suspects(suspects, everyone) == []
    assert sorted(w.id for w in pool if w.reserved) == ["w1", "w3"]
    alone = WorkerPool()
    worker = join(alone, "w", 1)
    fill(alone, [Task("x")])
    alone.place_suspects([Task("s")], everyone)
    assert worker.reserved


def test_no_waiting_suspect_leaves_no_worker_reserved() -> None:
    """Once the suspects are gone, reserved workers serve the queue again."""
    pool = WorkerPool()
    worker = join(pool, "w", 1)
    fill(pool, [Task("x")])
    pool.place_suspects([Task("s")], everyone)
    assert worker.reserved
    pool.place_suspects([], everyone)
    assert not worker.reserved


# -- prefetch backlogs ----------------------------------------------------------------
def test_a_backlog_holds_up_to_prefetch_attempts_past_the_free_slots() -> None:
    """With prefetch 2 a full worker takes two more; ``free`` goes to -2 and no further."""
    pool = WorkerPool()
    worker = join(pool, "w", 1, prefetch=2)
    none = join(pool, "plain", 1)
    assert pool.backlog_full(none)
    fill(pool, [Task("a"), Task("z")])
    assert not pool.backlog_full(worker)
    pool.add_to_backlog(worker, Task("b", priority=3))
    pool.add_to_backlog(worker, Task("c", priority=1))
    assert pool.backlog_full(worker)
    assert worker.free == -2 and worker.running == {"a", "b", "c"}
    assert list(worker.waiting) == ["b", "c"]
    assert pool.may_backlog([worker]) and not pool.may_backlog([none])


def test_a_freed_slot_starts_the_most_urgent_of_the_backlog() -> None:
    """The backlog estimate drops finished and returned ids, then one per freed slot."""
    worker = WorkerSlot("w", ref=None, slots=1, busy=0, local=False, prefetch=4)  # type: ignore[arg-type]
    worker.waiting = {"low": (3, 0), "high": (0, 1), "done": (1, 2), "back": (1, 3)}
    # Three credits: one for "done" (it was in the backlog), one for "back" (returned,
    # held no slot), one freed slot that started the most urgent waiting attempt.
    worker.backlog_started(report("w", ["done"], 3, returned=["back"]))
    assert worker.waiting == {"low": (3, 0)}


def test_less_urgent_backlogged_work_is_asked_back_once() -> None:
    """A queued task of priority 1 asks back level-2+ backlog entries, once each."""
    pool = WorkerPool()
    one, two = join(pool, "one", 1, prefetch=3), join(pool, "two", 1, prefetch=3)
    fill(pool, [Task("r1"), Task("r2")])
    pool.add_to_backlog(one, Task("n", priority=2))
    pool.add_to_backlog(one, Task("h", priority=1))
    pool.add_to_backlog(two, Task("c", priority=0))
    assert pool.reclaim_less_urgent(1, [one, two]) == [one]
    assert list(one.waiting) == ["h"] and list(two.waiting) == ["c"]
    assert pool.reclaim_less_urgent(1, [one, two]) == []


def test_a_worker_running_a_suspect_or_emptying_gives_its_whole_backlog_back() -> None:
    """``reclaim_backlogs`` names each reserved or solo worker with a backlog, and clears it."""
    pool = WorkerPool()
    worker = join(pool, "w", 1, prefetch=2)
    other = join(pool, "o", 1, prefetch=2)
    fill(pool, [Task("a"), Task("b")])
    pool.add_to_backlog(worker, Task("x"))
    pool.add_to_backlog(other, Task("y"))
    assert pool.reclaim_backlogs() == []
    pool.place_suspects([Task("s")], everyone)  # no empty worker: the least busy reserves
    assert [w.id for w in pool if w.reserved] == ["w"]
    assert pool.reclaim_backlogs() == [worker]
    assert worker.waiting == {} and other.waiting == {"y": other.waiting["y"]}


def test_statistics_list_each_worker_and_the_totals() -> None:
    """Per worker: slots, credits, in flight, completed; totals for the pool."""
    pool = WorkerPool()
    worker = join(pool, "w", 2, prefetch=1)
    join(pool, "v", 1)
    fill(pool, [Task("a"), Task("b"), Task("c")])
    pool.add_to_backlog(worker, Task("d"))
    pool.credit(report("v", ["b"], 1))
    pool["v"].finished("b")
    stats = pool.statistics()
    assert stats.workers == [WireWorkerStats("w", 2, -1, 3, 0), WireWorkerStats("v", 1, 1, 0, 1)]
    assert (stats.running, stats.backlogged, stats.solo, stats.reserved) == (3, 1, 0, 0)


# -- the model ------------------------------------------------------------------------
WORKER_IDS = [LOCAL, "w1", "w2", "w3"]
NAMES = ["a", "b"]


class PoolModel(RuleBasedStateMachine):
    """Random joins, leaves, retirements, dispatch passes and reports against the pool.

    The model knows where each task is and how many slots each worker reported busy at
    join (tasks the pool never saw); the pool must agree and keep its invariants.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool = WorkerPool(LOCAL)
        self.queue: list[Task] = []
        self.suspects: list[Task] = []
        self.where: dict[str, str] = {}
        """task id -> the worker it was started on (the model's own table)."""
        self.unknown: dict[str, int] = {}
        """worker id -> slots busy with work the pool never saw (``busy`` at join)."""
        self.can: dict[str, set[str]] = {}
        self.tasks: dict[str, Task] = {}
        self.ids = 0

    @initialize()
    def start(self) -> None:
        self.pool.join(LOCAL, Ref(), 2, local=True)  # type: ignore[arg-type]
        self.can[LOCAL] = set(NAMES)
        self.unknown[LOCAL] = 0

    def _lost(self, task_ids: set[str]) -> None:
        for task_id in sorted(task_ids):
            task = self.tasks[task_id]
            del self.where[task_id]
            self.suspects.append(task)
        self.suspects.sort(key=lambda t: t.priority)

    @rule(
        worker=st.sampled_from(WORKER_IDS[1:]),
        slots=st.integers(0, 3),
        busy=st.integers(0, 3),
        prefetch=st.integers(0, 2),
        names=st.sets(st.sampled_from(NAMES), min_size=1),
    )
    def join(self, worker: str, slots: int, busy: int, prefetch: int, names: set[str]) -> None:
        if worker in self.pool:
            self.leave(worker)
        self.pool.join(worker, Ref(), slots, busy=busy, prefetch=prefetch)  # type: ignore[arg-type]
        self.can[worker] = names
        self.unknown[worker] = min(busy, slots)

    @rule(worker=st.sampled_from(WORKER_IDS))
    def leave(self, worker: str) -> None:
        in_flight = self.pool.leave(worker)
        expected = {t for t, w in self.where.items() if w == worker}
        if worker in self.unknown:
            assert in_flight == expected
            del self.unknown[worker]
            self._lost(expected)
        else:
            assert in_flight is None

    @rule(worker=st.sampled_from(WORKER_IDS))
    def retire(self, worker: str) -> None:
        assert self.pool.retire(worker) == (worker in self.pool)

    @rule(count=st.integers(1, 6), name=st.sampled_from(NAMES), priority=st.integers(0, 3))
    def submit(self, count: int, name: str, priority: int) -> None:
        for _ in range(count):
            self.ids += 1
            task = Task(f"t{self.ids}", name, priority)
            self.tasks[task.id] = task
            self.queue.append(task)
        self.queue.sort(key=lambda t: t.priority)

    @rule(backlog=st.booleans())
    def dispatch(self, backlog: bool) -> None:
        """One pass as the control plane makes it: suspects, free slots, backlogs, reclaim."""
        before = {w.id: (set(w.running), w.accepting) for w in self.pool}
        started: list[tuple[Task, WorkerSlot]] = []
        candidates = [w for w in self.pool if w.accepting and w.solo is None and w.slots > 0]
        reserved_before = sum(1 for w in candidates if w.reserved and w.solo is None)

        def can_run(worker_id: str, name: str) -> bool:
            return name in self.can[worker_id]

        waiting = list(self.suspects)
        placed = self.pool.place_suspects(self.suspects, can_run)
        for task, worker in placed:
            assert before[worker.id][0] == set() and can_run(worker.id, task.name)
            assert task in waiting and task not in self.suspects
            started.append((task, worker))
        reserved = sum(1 for w in candidates if w.reserved and w.solo is None)
        assert reserved <= max(reserved_before, 1, len(candidates) // 2)
        if not self.suspects:  # (a worker that stopped accepting may stay marked)
            assert not any(w.reserved for w in candidates)
        held = {w.id for w in self.pool if w.reserved or w.solo is not None}
        workers = self.pool.dispatchable()
        self.pool.fill(workers, popper(self.queue, self.can), lambda t, w: started.append((t, w)))
        assert not any(w.free > 0 and popper(list(self.queue), self.can)(w.id) for w in workers)
        if backlog:
            for worker in workers:
                while not self.pool.backlog_full(worker):
                    task = popper(self.queue, self.can)(worker.id)
                    if task is None:
                        break
                    self.pool.add_to_backlog(worker, task)
                    started.append((task, worker))
        self.pool.reclaim_backlogs()
        for _, worker in started[len(placed) :]:
            assert worker.id not in held, "a worker running a suspect alone or emptying got work"
        for task, worker in started:
            assert task.id not in self.where, "started twice"
            self.where[task.id] = worker.id
            assert before[worker.id][1], "a worker that takes no work got some"

    @rule(data=st.data(), worker=st.sampled_from(WORKER_IDS))
    def worker_reports(self, data: st.DataObject, worker: str) -> None:
        """The worker finishes some tasks (or busy ones the pool never saw) and returns some
        unstarted backlog entries."""
        slot = self.pool.get(worker)
        if slot is None:
            return
        mine = sorted(t for t, w in self.where.items() if w == worker)
        done = data.draw(st.lists(st.sampled_from(mine), unique=True)) if mine else []
        left = [t for t in mine if t not in done and t in slot.waiting]
        returned = data.draw(st.lists(st.sampled_from(left), unique=True)) if left else []
        hidden = data.draw(st.integers(0, self.unknown[worker]))
        self.unknown[worker] -= hidden
        assert self.pool.credit(report(worker, done, len(done) + len(returned) + hidden, returned))
        for task_id in done:
            slot.finished(task_id)
            del self.where[task_id]
            del self.tasks[task_id]
        for task_id in returned:
            slot.release(task_id)
            del self.where[task_id]
            self.queue.insert(0, self.tasks[task_id])
        self.queue.sort(key=lambda t: t.priority)

    @invariant()
    def a_task_is_on_at_most_one_worker_and_where_the_model_put_it(self) -> None:
        seen: dict[str, str] = {}
        for worker in self.pool:
            for task_id in worker.running:
                assert task_id not in seen, f"{task_id} on {seen.get(task_id)} and {worker.id}"
                seen[task_id] = worker.id
        assert seen == self.where

    @invariant()
    def credits_are_conserved_and_never_below_the_backlog_allowance(self) -> None:
        for worker in self.pool:
            assert worker.free + len(worker.running) + self.unknown[worker.id] == worker.slots
            assert -worker.prefetch <= worker.free <= worker.slots
            assert set(worker.waiting) <= worker.running

    @invariant()
    def a_solo_worker_runs_its_suspect_and_nothing_else(self) -> None:
        for worker in self.pool:
            if worker.solo is not None:
                assert worker.running == {worker.solo}
                assert not worker.waiting

    @invariant()
    def the_local_executor_serves_only_alone(self) -> None:
        local = self.pool.get(LOCAL)
        if local is not None:
            others = [w for w in self.pool if not w.local and not w.retiring]
            assert local.accepting == (not others)

    @invariant()
    def statistics_agree_with_the_table(self) -> None:
        stats = self.pool.statistics()
        assert stats.running == len(self.where) == self.pool.running_count()
        assert [(s.id, s.running) for s in stats.workers] == [
            (w.id, len(w.running)) for w in self.pool
        ]


class TestThePoolAgainstAModel(PoolModel.TestCase):  # type: ignore[misc,valid-type]
    """The pool keeps its invariants through any sequence of joins, leaves, retirements,
    dispatch passes and reports (PoolModel)."""

    settings = settings(max_examples=examples(60), stateful_step_count=40, deadline=None)
