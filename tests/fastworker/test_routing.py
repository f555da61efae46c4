"""The pure dispatch-policy core (fastworker._routing), tested directly with a fake clock."""

from __future__ import annotations

import math

import pytest

from fastworker import ConfigurationError, Registry, task
from fastworker._messages import TaskInfo
from fastworker._routing import Limiter, Router, WorkerCapabilities, parse_rate


class Item:
    """A queued task as the router sees it."""

    def __init__(self, id: str, name: str, priority: int = 2, at: float = 0.0) -> None:
        self.id = id
        self.name = name
        self.priority = priority
        self.enqueued_at = at
        self.attempts = 0
        self.live = True
        self.running = False


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_router(
    policies: dict[str, TaskInfo] | None = None, aging: float | None = 60.0
) -> tuple[Router[Item], Clock]:
    clock = Clock()
    table = policies or {}
    router: Router[Item] = Router(
        lambda name: table.get(name, TaskInfo(name)),
        aging,
        is_live=lambda item: item.live,
        is_running=lambda item: getattr(item, "running", False),
        clock=clock,
    )
    return router, clock


def caps(*names: str, queues: tuple[str, ...] | None = None) -> WorkerCapabilities:
    return WorkerCapabilities(frozenset(names), None if queues is None else frozenset(queues))


def drain(router: Router[Item], worker: str) -> list[str]:
    out = []
    while (item := router.pop_for(worker)) is not None:
        out.append(item.id)
    return out


def test_parse_rate() -> None:
    """N/s, N/m and N/h parse to (count, window seconds); anything else is refused clearly."""
    assert parse_rate("10/s") == (10, 1.0)
    assert parse_rate("30/m") == (30, 60.0)
    assert parse_rate(" 5 / hour ") == (5, 3600.0)
    for bad in ("0/s", "10", "10/d", "ten/s", "-1/s", ""):
        with pytest.raises(ValueError, match="rate_limit must look like"):
            parse_rate(bad)


def test_task_options_are_validated_at_decoration() -> None:
    """@task refuses a bad queue, max_concurrency or rate_limit at once, naming the task."""
    registry = Registry()
    for options in (
        {"queue": ""},
        {"queue": "a,b"},
        {"max_concurrency": 0},
        {"max_concurrency": True},
        {"rate_limit": "fast"},
    ):
        with pytest.raises(ConfigurationError, match="task 'f'"):
            task(name="f", registry=registry, **options)(lambda: None)
    task(name="ok", registry=registry, queue="images", max_concurrency=2, rate_limit="3/m")(
        lambda: None
    )
    info = registry.get("ok").info()
    assert (info.queue, info.max_concurrency, info.rate_limit) == ("images", 2, "3/m")


def test_a_worker_gets_only_the_names_it_has() -> None:
    """Tasks go only to workers that announced their name; others wait for one."""
    router, _ = make_router()
    router.set_worker("a", caps("fa"))
    router.set_worker("b", caps("fb"))
    for i in range(3):
        router.push(Item(f"a{i}", "fa"))
        router.push(Item(f"b{i}", "fb"))
    router.push(Item("c0", "fc"))
    assert drain(router, "a") == ["a0", "a1", "a2"]
    assert drain(router, "b") == ["b0", "b1", "b2"]
    assert len(router) == 1
    assert router.waiting_names() == ["fc"]
    router.set_worker("c", caps("fc"))
    assert router.waiting_names() == []
    assert drain(router, "c") == ["c0"]


def test_queues_filter_what_a_worker_serves() -> None:
    """A worker serving queue "images" gets images tasks only, though it has both names."""
    policies = {"resize": TaskInfo("resize", queue="images")}
    router, _ = make_router(policies)
    router.set_worker("img", caps("resize", "mail", queues=("images",)))
    router.push(Item("m", "mail"))
    router.push(Item("r", "resize"))
    assert drain(router, "img") == ["r"]
    assert router.waiting_names() == ["mail"]


def test_strict_priority_across_a_workers_classes() -> None:
    """A worker eligible for two classes takes CRITICAL before NORMAL whichever class."""
    router, _ = make_router()
    router.set_worker("both", caps("x", "y"))
    router.set_worker("only-y", caps("y"))
    router.push(Item("y-normal", "y", priority=2, at=0.0))
    router.push(Item("x-low", "x", priority=3, at=1.0))
    router.push(Item("x-critical", "x", priority=0, at=2.0))
    router.push(Item("y-high", "y", priority=1, at=3.0))
    assert drain(router, "both") == ["x-critical", "y-high", "y-normal", "x-low"]


def test_aging_across_classes() -> None:
    """An old LOW task of one class overtakes a fresh CRITICAL one of another."""
    router, clock = make_router(aging=10.0)
    router.set_worker("w", caps("x", "y"))
    router.set_worker("v", caps("y"))
    router.push(Item("old-low", "x", priority=3, at=0.0))
    clock.now = 35.0  # three levels of aging: LOW counts as CRITICAL, and is older
    router.push(Item("new-critical", "y", priority=0, at=35.0))
    assert drain(router, "w") == ["old-low", "new-critical"]


def test_max_concurrency_skips_the_class_until_an_attempt_ends() -> None:
    """At the limit the class is skipped (others behind it still go); it resumes when an
    attempt ends."""
    router, _ = make_router({"lim": TaskInfo("lim", max_concurrency=1)})
    router.set_worker("w", caps("lim", "free"))
    first = Item("l1", "lim", priority=0)
    router.push(first)
    router.push(Item("l2", "lim", priority=0))
    router.push(Item("f1", "free", priority=3))
    item = router.pop_for("w")
    assert item is first
    first.running = True
    assert router.pop_for("w").id == "f1"  # type: ignore[union-attr]
    assert router.pop_for("w") is None
    assert router.next_wake is None  # a concurrency limit has no time to wake at
    first.running = False
    assert router.pop_for("w").id == "l2"  # type: ignore[union-attr]


def test_rate_limit_sliding_window_and_wake_time() -> None:
    """3/m: three starts, then the class waits until the first start is 60 s old;
    next_wake says exactly when."""
    router, clock = make_router({"r": TaskInfo("r", rate_limit="3/m")})
    router.set_worker("w", caps("r"))
    for i in range(5):
        router.push(Item(f"r{i}", "r"))
    started = []
    for t in (0.0, 10.0, 20.0):
        clock.now = t
        item = router.pop_for("w")
        assert item is not None
        started.append(item.id)
    clock.now = 30.0
    assert router.pop_for("w") is None
    assert router.next_wake == 60.0
    clock.now = 59.9
    assert router.pop_for("w") is None
    clock.now = 60.0
    item = router.pop_for("w")
    assert item is not None and item.id == "r3"


def test_limiter_direct() -> None:
    """The limiter itself: blocked_until is 0 when free, inf at the concurrency limit."""
    limiter = Limiter(2, None)
    a, b = Item("a", "n"), Item("b", "n")
    limiter.started(a, 0.0)
    limiter.started(b, 0.0)
    assert limiter.blocked_until(0.0, lambda item: True) == math.inf
    assert limiter.blocked_until(0.0, lambda item: item.id == "a") == 0.0


def test_a_joining_worker_regroups_without_losing_order() -> None:
    """When workers come and go, queued items keep their age order and none is lost."""
    router, _ = make_router()
    router.set_worker("a", caps("x", "y"))
    router.set_worker("b", caps("y"))
    for i in range(4):
        router.push(Item(f"x{i}", "x", at=float(2 * i)))
        router.push(Item(f"y{i}", "y", at=float(2 * i + 1)))
    router.remove_worker("b")  # x and y now have one worker set: their classes merge
    assert len(router.classes_for("a")) == 1
    router.set_worker("b", caps("x", "y"))  # re-keyed in place
    assert drain(router, "b") == ["x0", "y0", "x1", "y1", "x2", "y2", "x3", "y3"]
    assert len(router) == 0


def test_cancelled_items_are_skipped() -> None:
    """A discarded (cancelled) queued item is never handed out."""
    router, _ = make_router()
    router.set_worker("w", caps("x"))
    gone = Item("gone", "x")
    router.push(gone)
    router.push(Item("kept", "x"))
    gone.live = False
    router.discard(gone)
    assert len(router) == 1
    assert drain(router, "w") == ["kept"]


def test_twenty_names_on_identical_workers_share_one_class() -> None:
    """The usual cluster (every worker has every task) has one class however many names:
    a pop looks at one set of queue heads, plus one per limited task."""
    policies = {"rated": TaskInfo("rated", rate_limit="100/s")}
    names = [f"t{i}" for i in range(20)] + ["rated"]
    router, _ = make_router(policies)
    for w in ("w1", "w2"):
        router.set_worker(w, caps(*names))
    for i, name in enumerate(names):
        router.push(Item(f"i{i}", name))
    assert len(router.classes_for("w1")) == 2
