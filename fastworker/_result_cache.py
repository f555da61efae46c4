"""The ResultCache actor: terminal outcomes with LRU, TTL and a byte budget; wakes waiters."""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import attrs
import trio

from actors import Actor, ActorRef, Context, Delivery, PeerDown

from ._messages import Outcome, Results, Unknown
from ._protocol import (
    GetCacheStatistics,
    Lookup,
    Peek,
    Store,
    Subscribe,
    Unsubscribe,
)
from ._wire import Sender, drop_outcome_value, outcome_size

log = logging.getLogger("fastworker.result_cache")

_OVERHEAD = 200  # rough bytes per entry beyond the value and error text


@attrs.frozen
class CacheStatistics:
    """Entries, bytes and lifetime counters of the result cache."""

    entries: int
    bytes: int
    max_entries: int
    max_bytes: int
    stored: int
    duplicates: int
    hits: int
    misses: int
    evicted: int
    expired: int
    waiting: int


def _size(outcome: Outcome) -> int:
    size = _OVERHEAD + len(outcome.id)
    if outcome.value is not None:
        size += len(outcome.value)
    if outcome.error is not None:
        size += len(outcome.error.message) + len(outcome.error.traceback)
    return size


class ResultStore:
    """LRU by count, a byte budget and a TTL from the time of storing (``clock`` seconds)."""

    def __init__(
        self,
        max_entries: int = 10_000,
        ttl: float = 3600.0,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        if max_entries < 1 or ttl <= 0 or max_bytes < 1:
            raise ValueError("result cache size, ttl and byte budget must be positive")
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Outcome, float, int]] = OrderedDict()
        self._expiry: deque[tuple[float, str]] = deque()
        self.bytes = 0
        self.stored = self.duplicates = self.hits = self.misses = 0
        self.evicted = self.expired = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._entries

    def put(self, outcome: Outcome, now: float | None = None) -> bool:
        """Store a terminal outcome; False (ignored) if the task already has one.

        ``now`` (the store's clock) may be passed when storing many at once.
        """
        if outcome.id in self._entries:
            self.duplicates += 1
            return False
        if now is None:
            now = self._clock()
        size = _size(outcome)
        self._entries[outcome.id] = (outcome, now + self.ttl, size)
        self._expiry.append((now + self.ttl, outcome.id))
        self.bytes += size
        self.stored += 1
        self.expire(now)
        while len(self._entries) > self.max_entries or (
            self.bytes > self.max_bytes and len(self._entries) > 1
        ):
            _, (_, _, old_size) = self._entries.popitem(last=False)
            self.bytes -= old_size
            self.evicted += 1
        return True

    def get(
        self, task_id: str, now: float | None = None, *, refresh: bool = True
    ) -> Outcome | None:
        """The outcome (refreshing its LRU place unless ``refresh=False``) or None if
        absent or expired."""
        entry = self._entries.get(task_id)
        if entry is None:
            self.misses += 1
            return None
        outcome, expires, size = entry
        if expires <= (self._clock() if now is None else now):
            del self._entries[task_id]
            self.bytes -= size
            self.expired += 1
            self.misses += 1
            return None
        if refresh:
            self._entries.move_to_end(task_id)
        self.hits += 1
        return outcome

    def expire(self, now: float | None = None) -> int:
        """Drop entries past their TTL; returns how many."""
        now = self._clock() if now is None else now
        dropped = 0
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            expires, task_id = expiry.popleft()
            entry = self._entries.get(task_id)
            if entry is not None and entry[1] == expires:
                del self._entries[task_id]
                self.bytes -= entry[2]
                self.expired += 1
                dropped += 1
        # Entries evicted by LRU leave stale expiry items; keep the deque bounded.
        if len(expiry) > 2 * len(self._entries) + 1024:
            self._expiry = deque(
                (e, i) for e, i in expiry if (x := self._entries.get(i)) and x[1] == e
            )
        return dropped


# -- messages (in-process only) ---------------------------------------------------------


class ResultCache(Actor):
    """Owns the ResultStore; answers lookups and pushes outcomes to subscribers."""

    def __init__(self, store: ResultStore, sweep_interval: float = 60.0) -> None:
        self.store = store
        self.sweep_interval = sweep_interval
        # Usually one subscriber per task: a list is cheaper than a set here.
        self._waiters: dict[str, list[ActorRef]] = {}
        # Pushes are split to fit the link's frames and wait for room when the
        # watcher's link is busy; a result too big for the watcher's link reaches it as
        # that task's PayloadTooLarge failure (the stored result stays for get_result).
        self._pushes: Sender[Outcome] = Sender(
            "results", _results, outcome_size, drop_outcome_value, on_lost=_lost_push
        )
        self._unknown: Sender[str] = Sender("unknown ids", _unknown, _id_size, _no_refit)

    async def started(self, ctx: Context) -> None:
        """Start the TTL sweeper and the senders of pushes that wait for room."""
        ctx.nursery.start_soon(self._sweep)
        self._pushes.start(ctx.nursery)
        self._unknown.start(ctx.nursery)

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(self.sweep_interval)
            self.store.expire()

    def statistics(self) -> CacheStatistics:
        """Entries, bytes and counters."""
        s = self.store
        return CacheStatistics(
            entries=len(s),
            bytes=s.bytes,
            max_entries=s.max_entries,
            max_bytes=s.max_bytes,
            stored=s.stored,
            duplicates=s.duplicates,
            hits=s.hits,
            misses=s.misses,
            evicted=s.evicted,
            expired=s.expired,
            waiting=len(self._waiters),
        )

    def apply_now(self, message: Store | Subscribe) -> None:
        """Store or Subscribe at once, from an actor of this process (see DirectCacheRef)."""
        pushes: dict[ActorRef, list[Outcome]] = {}
        if isinstance(message, Store):
            self._store(message.outcomes, pushes)
        else:
            self._subscribe(message, pushes)
        for ref, outcomes in pushes.items():
            self._pushes.send_nowait(ref, outcomes)

    async def handle_batch(self, ctx: Context, batch: list[Delivery]) -> None:
        """Store outcomes from the whole batch first, then push one Results per subscriber."""
        pushes: dict[ActorRef, list[Outcome]] = {}
        for delivery in batch:
            msg = delivery.message
            if type(msg) is Store:
                self._store(msg.outcomes, pushes)
            elif type(msg) is Subscribe:
                self._subscribe(msg, pushes)
            else:
                await self.handle(ctx, delivery)
                continue
            if delivery.reply is not None:
                delivery.reply.resolve(None)
        for ref, outcomes in pushes.items():
            self._pushes.send_nowait(ref, outcomes)

    def _store(self, outcomes: list[Outcome], pushes: dict[ActorRef, list[Outcome]]) -> None:
        store = self.store
        put = store.put
        waiters = self._waiters
        now = trio.current_time()
        for outcome in outcomes:
            if not put(outcome, now):
                continue
            if waiters:
                refs = waiters.pop(outcome.id, None)
                if refs:
                    for ref in refs:
                        push = pushes.get(ref)
                        if push is None:
                            pushes[ref] = [outcome]
                        else:
                            push.append(outcome)

    def _subscribe(self, msg: Subscribe, pushes: dict[ActorRef, list[Outcome]]) -> None:
        unknown: list[str] = []
        found: list[Outcome] = []
        get = self.store.get
        waiters = self._waiters
        ref = msg.ref
        now = trio.current_time()
        for task_id in msg.ids:
            # Pushing a result to its watcher does not make it worth keeping longer: a
            # refresh here would evict results nobody has collected yet before those
            # just delivered (a client gathering batch after batch hit that).
            outcome = get(task_id, now, refresh=False)
            if outcome is not None:
                found.append(outcome)
            elif msg.unknown_if_absent:
                unknown.append(task_id)
            else:
                refs = waiters.get(task_id)
                if refs is None:
                    waiters[task_id] = [ref]
                elif ref not in refs:
                    refs.append(ref)
        if found:
            pushes.setdefault(ref, []).extend(found)
        if unknown:
            self._unknown.send_nowait(ref, unknown)

    async def receive(self, ctx: Context, message: Any) -> Any:
        """Lookups, statistics and unsubscribes."""
        if isinstance(message, Lookup):
            return self.store.get(message.id)
        if isinstance(message, Peek):
            return [i for i in message.ids if i in self.store]
        if isinstance(message, Unsubscribe):
            # Rare (a client went away): a scan keeps the hot path free of a reverse index.
            for task_id, refs in list(self._waiters.items()):
                if message.ref in refs:
                    refs.remove(message.ref)
                    if not refs:
                        del self._waiters[task_id]
            return None
        if isinstance(message, GetCacheStatistics):
            return self.statistics()
        raise TypeError(f"ResultCache does not handle {type(message).__name__}")


def _results(outcomes: list[Outcome], last: bool, extra: Any) -> Results:
    return Results(outcomes)


def _unknown(ids: list[str], last: bool, extra: Any) -> Unknown:
    return Unknown(ids)


def _id_size(task_id: str) -> int:
    return 8 + len(task_id)


def _no_refit(task_id: str, exc: Exception) -> None:
    return None


def _lost_push(ref: ActorRef, outcomes: list[Outcome], exc: Exception) -> None:
    # A watcher whose link went down re-watches after it reconnects; anything else is a
    # fault worth seeing.
    level = logging.INFO if isinstance(exc, PeerDown) else logging.WARNING
    log.log(level, "could not push %d results to %r: %s", len(outcomes), ref, exc)


class DirectCacheRef(ActorRef):
    """The control plane's handle on the result cache of its own process.

    Store and Subscribe told with ``tell_nowait`` are applied at once, in order, in the
    caller's turn (results reach their watchers one scheduling round sooner, with one
    mailbox hop less per batch); everything else goes to the cache's mailbox as usual.
    Safe because both actors run in one trio thread and these two handlers never wait.
    """

    __slots__ = ("_cache", "_ref", "name")

    def __init__(self, cache: ResultCache, ref: ActorRef) -> None:
        self._cache = cache
        self._ref = ref
        self.name = ref.name

    @property
    def node_id(self) -> str:
        """The uuid of this node."""
        return self._ref.node_id

    async def tell(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Deliver to the cache's mailbox."""
        await self._ref.tell(message, sender=sender)

    def tell_nowait(self, message: Any, *, sender: ActorRef | None = None) -> None:
        """Store and Subscribe at once; the rest to the cache's mailbox."""
        kind = type(message)
        if (kind is Store or kind is Subscribe) and getattr(self._ref, "alive", True):
            self._cache.apply_now(message)
        else:
            self._ref.tell_nowait(message, sender=sender)

    async def ask(self, message: Any, *, sender: ActorRef | None = None) -> Any:
        """Ask the cache through its mailbox."""
        return await self._ref.ask(message, sender=sender)

    def __repr__(self) -> str:
        return f"<DirectCacheRef {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return other is self or other == self._ref

    def __hash__(self) -> int:
        return hash(self._ref)
