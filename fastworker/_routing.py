"""Dispatch policy, trio-free: which queued task may go to which free worker, and when.

The control plane asks a ``Router`` for "the most urgent task this worker may run now".
Tasks are kept in *eligibility classes*: tasks whose names the same set of workers can
run share one class (one set of four priority queues with aging); a task with a
cluster-wide limit (``max_concurrency``, ``rate_limit``) gets a class of its own, so a
task held back by its limit never stands in front of others. A worker's candidates are
the heads of the classes it is eligible for, so a pop costs O(eligible classes), not
O(queue); in the usual cluster (every worker has every task) that is one class, as
before routing existed.

Classes are keyed by the set of workers that can run their names. When a worker joins or
leaves, a name whose worker set changed moves to its new class (a class whose names all
move together is re-keyed in place; otherwise its items are merged by age).

Everything here takes an injected clock, so it is tested directly, without trio.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

import attrs

from ._messages import TaskInfo
from ._queue import PriorityQueues

DEFAULT_QUEUE = "default"

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_WINDOWS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: str) -> tuple[int, float]:
    """``"10/s"`` -> (10, 1.0); ``"N/m"`` and ``"N/h"`` too. ValueError says what is wrong."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f'rate_limit must look like "10/s", "30/m" or "100/h" (at least 1), got {text!r}'
        )
    return int(match.group(1)), _WINDOWS[match.group(2)[0]]


def _named(name: str) -> Callable[[Routable], bool]:
    return lambda item: item.name == name


class Routable(Protocol):
    """What the router needs of a queued task."""

    id: str
    name: str
    priority: int
    enqueued_at: float
    attempts: int


T = TypeVar("T", bound=Routable)


class Limiter:
    """One task name's cluster-wide limits: attempts running at once, starts per window."""

    __slots__ = ("max_concurrency", "rate", "running", "starts", "window")

    def __init__(self, max_concurrency: int | None, rate_limit: str | None) -> None:
        self.max_concurrency = max_concurrency
        self.rate, self.window = parse_rate(rate_limit) if rate_limit else (0, 0.0)
        self.running: dict[str, Routable] = {}
        self.starts: deque[float] = deque()

    def blocked_until(self, now: float, is_running: Callable[[Routable], bool]) -> float:
        """0.0 if an attempt may start now; else when it may (``inf``: when one ends)."""
        if self.max_concurrency is not None and len(self.running) >= self.max_concurrency:
            # Attempts end in many ways (result, retry, redelivery, cancel); ask which
            # of ours still run instead of hooking every one of them.
            self.running = {key: item for key, item in self.running.items() if is_running(item)}
            if len(self.running) >= self.max_concurrency:
                return math.inf
        rate = self.rate
        if rate and len(self.starts) >= rate:
            # Only the last ``rate`` starts matter; older ones are dropped when full.
            starts = self.starts
            cutoff = now - self.window
            while starts and starts[0] <= cutoff:
                starts.popleft()
            if len(starts) >= rate:
                return starts[0] + self.window
        return 0.0

    def started(self, item: Routable, now: float) -> None:
        """Count one attempt that starts now."""
        if self.max_concurrency is not None:
            self.running[item.id] = item  # a later attempt of it replaces this one
        if self.rate:
            self.starts.append(now)


class EligibilityClass(Generic[T]):
    """Queued tasks that the same workers may run (and, if limited, of one name)."""

    __slots__ = ("blocked_pass", "head", "head_pass", "key", "limiter", "names", "queue", "workers")

    def __init__(
        self,
        key: tuple[frozenset[str], str | None],
        queue: PriorityQueues[T],
        limiter: Limiter | None,
    ) -> None:
        self.key = key
        self.workers = key[0]
        self.queue = queue
        self.limiter = limiter
        self.names: set[str] = set()
        # Within one dispatch pass time stands still and nothing is pushed, so a class's
        # head (until it is popped) and a limit that held it back stay as they were.
        self.head: tuple[tuple[int, float, int], int] | None = None
        self.head_pass = -1
        self.blocked_pass = -1


@attrs.frozen
class WorkerCapabilities:
    """The task names a worker has (None: every task) and the queues it serves (None: all)."""

    names: frozenset[str] | None = None
    queues: frozenset[str] | None = None

    def can_run(self, info: TaskInfo) -> bool:
        """True if this worker may be sent ``info``'s tasks."""
        return (self.names is None or info.name in self.names) and (
            self.queues is None or info.queue in self.queues
        )


class Router(Generic[T]):
    """Queued tasks by eligibility class; picks work for a worker within the limits.

    ``policy(name)`` gives a name's TaskInfo (queue and limits); ``is_live(item)`` says a
    queued item is still queued (cancelled ones are skipped lazily); ``is_running(item)``
    says the attempt of it that a limiter counted still runs. A popped item counts
    against its name's limits at once: the caller is to start it.
    """

    def __init__(
        self,
        policy: Callable[[str], TaskInfo],
        aging: float | None,
        is_live: Callable[[T], bool],
        is_running: Callable[[Routable], bool],
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self.aging = aging
        self._is_live = is_live
        self._is_running = is_running
        self._clock = clock
        self.workers: dict[str, WorkerCapabilities] = {}
        self._classes: dict[tuple[frozenset[str], str | None], EligibilityClass[T]] = {}
        self._class_of: dict[str, EligibilityClass[T]] = {}
        self._worker_classes: dict[str, list[EligibilityClass[T]]] = {}
        self._limiters: dict[str, Limiter] = {}
        self._live = 0
        self.next_wake: float | None = None
        """After ``pop_for`` found a rate-limited class held back: when it may go again."""
        self._now: float | None = None
        self._pass = 0

    def __len__(self) -> int:
        return self._live

    # -- workers ------------------------------------------------------------------------
    def set_worker(self, worker_id: str, caps: WorkerCapabilities) -> None:
        """A worker joined (or announced again): route the names it has to it."""
        self.workers[worker_id] = caps
        self._regroup()

    def remove_worker(self, worker_id: str) -> None:
        """A worker left: its names are routed to the others (or wait for one)."""
        if self.workers.pop(worker_id, None) is not None:
            self._regroup()
        self._worker_classes.pop(worker_id, None)

    def eligible_workers(self, name: str) -> frozenset[str]:
        """The ids of the connected workers that may run ``name``."""
        info = self._policy(name)
        return frozenset(w for w, caps in self.workers.items() if caps.can_run(info))

    def can_run(self, worker_id: str, name: str) -> bool:
        """True if the worker may be sent tasks named ``name``."""
        caps = self.workers.get(worker_id)
        return caps is not None and caps.can_run(self._policy(name))

    def note_started(self, item: T) -> None:
        """An item started outside ``pop_for`` (a suspect run alone): count it against
        its name's limits."""
        limiter = self._limiters.get(item.name)
        if limiter is not None:
            limiter.started(item, self._clock() if self._now is None else self._now)

    def policy_changed(self, name: str) -> None:
        """A name's queue or limits changed (a worker announced other options): re-route."""
        self._limiters.pop(name, None)
        self._regroup(names=[name])

    # -- queueing -----------------------------------------------------------------------
    def _key(self, name: str) -> tuple[frozenset[str], str | None]:
        info = self._policy(name)
        workers = frozenset(w for w, caps in self.workers.items() if caps.can_run(info))
        limited = info.max_concurrency is not None or info.rate_limit is not None
        return (workers, name if limited else None)

    def _class(self, name: str) -> EligibilityClass[T]:
        klass = self._class_of.get(name)
        if klass is None:
            klass = self._class_for_key(self._key(name))
            klass.names.add(name)
            self._class_of[name] = klass
        return klass

    def _class_for_key(self, key: tuple[frozenset[str], str | None]) -> EligibilityClass[T]:
        klass = self._classes.get(key)
        if klass is None:
            limiter = None
            if key[1] is not None:
                limiter = self._limiters.get(key[1])
                if limiter is None:
                    info = self._policy(key[1])
                    limiter = Limiter(info.max_concurrency, info.rate_limit)
                    self._limiters[key[1]] = limiter
            queue: PriorityQueues[T] = PriorityQueues(self.aging, self._is_live, self._clock)
            klass = self._classes[key] = EligibilityClass(key, queue, limiter)
            self._worker_classes.clear()
        return klass

    def push(self, item: T) -> None:
        """Queue at the tail of its level."""
        self._class(item.name).queue.push(item)
        self._live += 1

    def push_front(self, item: T) -> None:
        """Queue at the head of its level (redelivery after a lost worker)."""
        self._class(item.name).queue.push_front(item)
        self._live += 1

    def discard(self, item: T | None = None) -> None:
        """Account for one queued item that died (it is skipped when reached)."""
        self._live -= 1
        if item is not None:
            klass = self._class_of.get(item.name)
            if klass is not None:
                klass.queue.discard()

    # -- dispatch -----------------------------------------------------------------------
    def classes_for(self, worker_id: str) -> list[EligibilityClass[T]]:
        """The classes a worker may take from (cached until classes change)."""
        classes = self._worker_classes.get(worker_id)
        if classes is None:
            classes = [k for k in self._classes.values() if worker_id in k.workers]
            self._worker_classes[worker_id] = classes
        return classes

    def begin_pass(self) -> None:
        """Start a dispatch pass: one clock reading for all its pops; next_wake reset."""
        self._now = self._clock()
        self._pass += 1
        self.next_wake = None

    def end_pass(self) -> None:
        """The dispatch pass is over: pops read the clock again."""
        self._now = None
        self._pass += 1

    def pop_for(self, worker_id: str) -> T | None:
        """The most urgent queued task this worker may run now, or None.

        Strict priority with aging across the worker's classes; a class held back by its
        limit is skipped (and ``next_wake`` says when a rate limit lets it go again).
        """
        classes = self._worker_classes.get(worker_id)
        if classes is None:
            classes = self.classes_for(worker_id)
        now = self._now
        if now is None:
            now = self._clock()
            in_pass = -2
        else:
            in_pass = self._pass
        if len(classes) == 1 and classes[0].limiter is None:
            # The usual cluster: one class, no limit: a plain priority pop.
            item = classes[0].queue.pop(now)
            if item is not None:
                self._live -= 1
            return item
        best: tuple[tuple[int, float, int], int] | None = None
        best_class: EligibilityClass[T] | None = None
        for klass in classes:
            queue = klass.queue
            if not queue._live or klass.blocked_pass == in_pass:
                continue
            if klass.head_pass == in_pass:
                head = klass.head
            else:
                head = klass.head = queue.peek(now)
                if in_pass >= 0:
                    klass.head_pass = in_pass
            if head is None or (best is not None and head[0] >= best[0]):
                continue
            limiter = klass.limiter
            if limiter is not None:
                until = limiter.blocked_until(now, self._is_running)
                if until:
                    if in_pass >= 0:
                        klass.blocked_pass = in_pass
                    if until != math.inf and (self.next_wake is None or until < self.next_wake):
                        self.next_wake = until
                    continue
            best, best_class = head, klass
        if best_class is None or best is None:
            return None
        self._live -= 1
        best_class.head_pass = -1
        item = best_class.queue.pop_level(best[1])
        if best_class.limiter is not None:
            best_class.limiter.started(item, now)
        return item

    # -- introspection ------------------------------------------------------------------
    def waiting_names(self) -> list[str]:
        """Names with queued tasks that no connected worker can run."""
        return sorted(
            name
            for klass in self._classes.values()
            if not klass.workers and len(klass.queue)
            for name in klass.names
        )

    # -- regrouping ---------------------------------------------------------------------
    def _regroup(self, names: Iterable[str] | None = None) -> None:
        """Move every name whose class key changed to its new class."""
        self._worker_classes.clear()
        todo = list(self._class_of) if names is None else [n for n in names if n in self._class_of]
        moves: dict[int, list[tuple[str, tuple[frozenset[str], str | None]]]] = {}
        for name in todo:
            klass = self._class_of[name]
            key = self._key(name)
            if key != klass.key:
                moves.setdefault(id(klass), []).append((name, key))
        for moved in moves.values():
            old = self._class_of[moved[0][0]]
            keys = {key for _, key in moved}
            if len(moved) == len(old.names) and len(keys) == 1:
                (key,) = keys
                if key not in self._classes:
                    # Every name of the class moves to one new key: re-key it in place.
                    del self._classes[old.key]
                    old.key = key
                    old.workers = key[0]
                    self._classes[key] = old
                    continue
            for name, key in moved:
                items = old.queue.take_where(_named(name))
                old.names.discard(name)
                target = self._class_for_key(key)
                target.names.add(name)
                target.queue.merge(items)
                self._class_of[name] = target
            if not old.names and not len(old.queue):
                self._classes.pop(old.key, None)
        self._worker_classes.clear()
