"""The dashboard's pure parts, tested directly (no server, no actors): checking what an
HTTP client sent, the JSON shown of tasks and events, the error bodies, the access
guard, the ring's queries and counters; and the package's import shape (the node
imports the dashboard, never the reverse; the pure parts use no trio)."""

from __future__ import annotations

import json
import math
from itertools import count
from typing import Any

import grimp
import pytest
from dash_support import TASK_KEYS

from fastworker._dashboard import RecentTasks
from fastworker._dashboard._counters import MAX_NAMES, OTHER_NAMES, Histogram, counters_of
from fastworker._dashboard._guard import Guard
from fastworker._dashboard._requests import (
    MAX_WAIT,
    max_body,
    parse_limit,
    parse_submission,
    parse_wait,
)
from fastworker._dashboard._responses import ApiError
from fastworker._dashboard._shapes import (
    arguments_preview,
    event_json,
    expired_task_json,
    live_task_json,
    outcome_task_json,
    status_task_json,
    summary_json,
)
from fastworker._errors import QueueFull
from fastworker._messages import Outcome, Run, Submission, WireError
from fastworker._model import Priority, TaskStatus
from fastworker._records import Event, EventKind
from fastworker._serialization import pack, pack_arguments, unpack_arguments


def _ids() -> Any:
    numbers = count(1)
    return lambda: f"id-{next(numbers)}"


def _bad(body: Any) -> ApiError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ApiError) as caught:
        parse_submission(raw, 1024, _ids())
    return caught.value


# -- what a client sends ----------------------------------------------------------------


def test_a_valid_submission_becomes_a_submission_with_packed_arguments() -> None:
    """Name, arguments ($bytes decoded), priority by name, countdown and an ISO eta map
    onto the Submission the control plane takes; a negative countdown means now."""
    new_id = _ids()
    body = {"task": "a.b", "args": [1, {"$bytes": "AAE="}], "kwargs": {"k": "v"}}
    sub = parse_submission(json.dumps({**body, "priority": "high"}).encode(), 1024, new_id)
    assert (sub.id, sub.name, sub.priority) == ("id-1", "a.b", int(Priority.HIGH))
    assert unpack_arguments(sub.payload) == ([1, b"\x00\x01"], {"k": "v"})
    assert sub.countdown is None and sub.eta is None
    sub = parse_submission(json.dumps({"task": "a.b", "countdown": -5}).encode(), 1024, new_id)
    assert sub.id == "id-2" and sub.countdown == 0.0
    sub = parse_submission(
        json.dumps({"task": "a.b", "eta": "2030-01-01T00:00:00+00:00"}).encode(), 1024, new_id
    )
    assert sub.eta == 1893456000.0 and sub.countdown is None
    sub = parse_submission(json.dumps({"task": "a.b", "unique_key": "k1"}).encode(), 1024, new_id)
    assert sub.unique_key == "k1"


def test_an_invalid_submission_says_what_to_send_and_takes_no_id() -> None:
    """Each bad body is a 400 naming the field (413 for arguments over the payload
    limit), and no task id is used up by a refused body."""
    new_id = _ids()
    for body in (b"{", b"[1]", b'{"task": ""}'):
        with pytest.raises(ApiError):
            parse_submission(body, 1024, new_id)
    assert new_id() == "id-1"  # nothing was taken by the three refusals
    assert "not JSON" in _bad(b"{nope").message
    assert '"task"' in _bad([1, 2]).message
    unknown = _bad({"task": "x", "zeta": 1, "alpha": 2})
    assert unknown.status == 400 and "alpha, zeta" in unknown.message
    assert "task" in unknown.message and "unique_key" in unknown.message
    assert "JSON array" in _bad({"task": "x", "args": {"a": 1}}).message
    assert "JSON object" in _bad({"task": "x", "kwargs": [1]}).message
    assert "unknown priority" in _bad({"task": "x", "priority": "urgent"}).message
    assert "countdown must be a number" in _bad({"task": "x", "countdown": True}).message
    assert "not both" in _bad({"task": "x", "countdown": 1, "eta": 2}).message
    assert "timezone" in _bad({"task": "x", "eta": "2030-01-01T00:00:00"}).message
    assert "ISO 8601" in _bad({"task": "x", "eta": "tomorrow"}).message
    assert "base64" in _bad({"task": "x", "args": [{"$bytes": "!!"}]}).message
    assert "must be a string" in _bad({"task": "x", "unique_key": 7}).message
    too_big = _bad({"task": "x", "args": ["y" * 5000]})
    assert (too_big.status, too_big.type) == (413, "PayloadTooLarge")


def test_wait_and_limit_are_checked_and_bounded() -> None:
    """?wait= is 0..MAX_WAIT seconds (not NaN, not infinite, not text); ?limit= is a
    whole number clamped to 1..1000."""
    assert parse_wait("0") == 0.0 and parse_wait("2.5") == 2.5
    assert parse_wait(str(MAX_WAIT)) == MAX_WAIT
    for text in ("-1", str(MAX_WAIT + 1), "nan", "inf", "soon"):
        with pytest.raises(ApiError) as caught:
            parse_wait(text)
        assert caught.value.status == 400 and repr(text) in caught.value.message
    assert (parse_limit("0"), parse_limit("50"), parse_limit("99999")) == (1, 50, 1000)
    with pytest.raises(ApiError, match="whole number"):
        parse_limit("ten")
    assert max_body(1000) > 4 * 1000


def test_refusals_map_to_http_statuses_by_error_type() -> None:
    """A control plane refusal keeps its type and message; known types get their status
    (QueueFull 503), anything else 500; the body is {"error": {"type", "message"}}."""
    full = ApiError.refused(QueueFull("the queue is full: retry later"))
    assert (full.status, full.type, full.message) == (
        503,
        "QueueFull",
        "the queue is full: retry later",
    )
    odd = ApiError.refused(RuntimeError("odd"))
    assert (odd.status, odd.type) == (500, "RuntimeError")
    response = full.response()
    assert response.status_code == 503
    assert json.loads(bytes(response.body)) == {
        "error": {"type": "QueueFull", "message": "the queue is full: retry later"}
    }


# -- what the API shows ------------------------------------------------------------------


def _failed_ring() -> RecentTasks:
    ring = RecentTasks()
    ring.submitted([Submission("t1", "job", pack_arguments([1, b"\x00"], {"k": 2}))], 10.0)
    ring.dispatched("w1", [Run("t1", "job", b"", 1)], 11.0)
    error = WireError("ValueError", "bad input", "Traceback ...")
    ring.outcomes([Outcome("t1", "failure", 1, None, error, 11.0, 12.5, "w1", "job")], 12.5)
    return ring


def test_every_source_of_a_task_gives_the_same_json_keys() -> None:
    """Running (the control plane's detail), by status only, finished (the cache's
    outcome, value as JSON with bytes as $bytes) and expired (the ring's summary): one
    shape, with the error's traceback where there is one."""
    ring = _failed_ring()
    summary = ring.get("t1")
    assert summary is not None
    info = {"name": "job", "status": "running", "attempts": 2, "worker": "w9"}
    live = live_task_json("t1", info, summary)
    assert set(live) == TASK_KEYS
    assert (live["status"], live["worker"], live["started_at"]) == ("running", "w9", 11.0)
    assert live_task_json("t1", info, None)["started_at"] is None
    by_status = status_task_json("flow-1", "pending", None)
    assert set(by_status) == TASK_KEYS
    assert (by_status["name"], by_status["attempts"]) == ("", 0)
    assert status_task_json("t1", "pending", summary)["attempts"] == 1
    outcome = Outcome("t2", "success", 3, pack({"b": b"\xff"}, what="v"), None, 1.0, 2.0, "w2", "")
    finished = outcome_task_json("t2", outcome, summary)
    assert set(finished) == TASK_KEYS
    assert finished["value"] == {"b": {"$bytes": "/w=="}}
    assert (finished["name"], finished["attempts"], finished["error"]) == ("job", 3, None)
    expired = expired_task_json(summary)
    assert set(expired) == TASK_KEYS
    assert expired["error"] == {
        "type": "ValueError",
        "message": "bad input",
        "traceback": "Traceback ...",
    }
    assert (expired["status"], expired["completed_at"], expired["value"]) == (
        "failure",
        12.5,
        None,
    )


def test_the_page_json_of_a_summary_and_of_an_event() -> None:
    """A ring summary shows its times and error without the traceback; an event its
    kind, id, status (as plain strings in JSON), name, worker and time (not its
    detail)."""
    summary = _failed_ring().get("t1")
    assert summary is not None
    shown = summary_json(summary)
    assert shown["error"] == {"type": "ValueError", "message": "bad input"}
    assert (shown["submitted_at"], shown["started_at"], shown["completed_at"]) == (10.0, 11.0, 12.5)
    assert (shown["status"], shown["attempts"], shown["worker"]) == ("failure", 1, "w1")
    event = Event(EventKind.TASK, "t1", TaskStatus.SUCCESS, "job", "w1", 5.0, "detail")
    assert json.loads(json.dumps(event_json(event))) == {
        "kind": "task",
        "id": "t1",
        "status": "success",
        "name": "job",
        "worker": "w1",
        "at": 5.0,
    }


def test_arguments_preview_is_short_json_and_never_raises() -> None:
    """Arguments show as JSON ($bytes for bytes), cut at the limit with " ..."; a payload
    that is not arguments says it cannot be shown."""
    payload = pack_arguments([b"\x00"], {"n": 1})
    assert json.loads(arguments_preview(payload)) == {
        "args": [{"$bytes": "AA=="}],
        "kwargs": {"n": 1},
    }
    assert arguments_preview(None) == ""
    long = arguments_preview(pack_arguments(["x" * 500], {}), limit=100)
    assert len(long) == 104 and long.endswith(" ...")
    assert arguments_preview(b"\xc1").startswith("(cannot show:")


# -- the ring's queries and counters ------------------------------------------------------


def test_the_page_filter_is_exact_status_and_name_substring() -> None:
    """Status must match exactly, the name may be any part of it; empty filters (the
    page's "") match every task; the limit keeps the newest."""
    ring = RecentTasks()
    ring.submitted([Submission("r1", "reports.build", b"\x92\x90\x80")], 1.0)
    ring.submitted([Submission("s1", "mail.send", b"\x92\x90\x80", countdown=60)], 2.0)
    ring.submitted([Submission("r2", "reports.build", b"\x92\x90\x80")], 3.0)

    def ids(**filters: Any) -> list[str]:
        return [s.id for s in ring.recent(**filters)]

    assert ids() == ids(status="", name="") == ["r2", "s1", "r1"]
    assert ids(status="queued", name="build") == ["r2", "r1"]
    assert ids(name="reports.") == ["r2", "r1"] and ids(name="send") == ["s1"]
    assert ids(status="queue") == [] and ids(status="scheduled", name="build") == []
    assert ids(limit=2) == ["r2", "s1"]


def test_changes_since_are_newest_first_each_once_and_limited() -> None:
    """A task changed several times is listed once (newest first); the limit cuts the
    list but the returned position covers every change; dropped tasks are skipped."""
    ring = RecentTasks(max_entries=3)
    ring.submitted([Submission(f"t{i}", "job", b"\x92\x90\x80") for i in range(3)], 1.0)
    start = ring.change_count
    ring.dispatched("w", [Run("t0", "job", b"", 1)], 2.0)
    ring.requeued([("t0", "job", "retry")], 3.0)
    ring.dispatched("w", [Run("t1", "job", b"", 1)], 4.0)
    seen, changed = ring.changed_since(start)
    assert seen == ring.change_count == start + 3
    assert [s.id for s in changed] == ["t1", "t0"]
    assert [s.id for s in ring.changed_since(start, limit=1)[1]] == ["t1"]
    ring.submitted([Submission("t3", "job", b"\x92\x90\x80")], 5.0)  # evicts t0
    _, changed = ring.changed_since(start)
    assert [s.id for s in changed] == ["t3", "t1"]
    assert ring.statistics() == {
        "entries": 3,
        "bytes": ring.bytes,
        "max_entries": 3,
        "max_bytes": ring.max_bytes,
        "evicted": 1,
    }
    assert sorted(s.id for s in ring) == ["t1", "t2", "t3"]


def test_name_counters_are_bounded_and_histograms_cumulative() -> None:
    """Past MAX_NAMES distinct names every new one shares "(other)"; a histogram's
    buckets are cumulative, end with +Inf and count negative times as 0."""
    names: dict[str, Any] = {}
    for i in range(MAX_NAMES):
        counters_of(names, f"n{i}").submitted += 1
    counters_of(names, "late").submitted += 1
    counters_of(names, "later").submitted += 1
    assert len(names) == MAX_NAMES + 1 and names[OTHER_NAMES].submitted == 2
    assert counters_of(names, "n0") is names["n0"]
    histogram = Histogram()
    for value in (-1.0, 0.003, 0.003, 100.0):
        histogram.observe(value)
    buckets = dict(histogram.buckets())
    assert buckets["0.001"] == 1 and buckets["0.005"] == 3 and buckets["60.0"] == 3
    assert buckets["+Inf"] == 4 and list(buckets)[-1] == "+Inf"
    assert math.isclose(histogram.sum, 100.006)


# -- the access guard --------------------------------------------------------------------


async def _through_guard(
    guard: Guard, method: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(scope, receive, send)
    start = sent[0]
    response_headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], response_headers, body


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_the_guard_checks_host_token_and_origin() -> None:
    """Without a token only this machine's Host names pass (DNS rebinding); with one a
    Bearer token is needed (401 with WWW-Authenticate; a browser gets the login page);
    a state-changing request from another origin is refused."""
    loopback = Guard(_ok, None, frozenset({"127.0.0.1", "localhost"}))
    assert (await _through_guard(loopback, "GET", {"host": "127.0.0.1:8766"}))[0] == 200
    status, _, body = await _through_guard(loopback, "GET", {"host": "evil.example:8766"})
    assert status == 403 and json.loads(body)["error"]["type"] == "Forbidden"

    guarded = Guard(_ok, "s3cret", None)
    status, headers, body = await _through_guard(guarded, "GET", {"host": "h"})
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="fastworker"'
    assert "--dashboard-token-file" in json.loads(body)["error"]["message"]
    status, _, body = await _through_guard(guarded, "GET", {"host": "h", "accept": "text/html"})
    assert status == 401 and body.lstrip().lower().startswith(b"<!doctype html")
    wrong = {"host": "h", "authorization": "Bearer nope"}
    assert (await _through_guard(guarded, "GET", wrong))[0] == 401
    right = {"host": "h", "authorization": "bearer  s3cret "}
    assert (await _through_guard(guarded, "GET", right))[0] == 200

    same = {**right, "origin": "http://h"}
    assert (await _through_guard(guarded, "POST", same))[0] == 200
    status, _, body = await _through_guard(guarded, "DELETE", {**right, "origin": "http://x"})
    assert status == 403 and "cross-origin" in json.loads(body)["error"]["message"]
    assert (await _through_guard(guarded, "GET", {**right, "origin": "http://x"}))[0] == 200


# -- the package's import shape ------------------------------------------------------------

PURE = (
    "_summary",
    "_counters",
    "_ring_queries",
    "_ring",
    "_shapes",
    "_requests",
    "_responses",
    "_json",
    "_guard",
)
USES_TRIO = ("_hub", "_backend", "_sse", "_server", "_ui", "_api_tasks", "_api_live", "_app")


def test_the_dashboard_never_imports_the_node_and_its_pure_parts_use_no_trio() -> None:
    """No import chain (TYPE_CHECKING ones included) leads from the dashboard to the
    control plane node, while the node imports the dashboard; the pure modules import
    neither trio nor a dashboard module that does."""
    graph = grimp.build_graph("fastworker", "actors", include_external_packages=True)
    assert not graph.chain_exists(
        importer="fastworker._dashboard",
        imported="fastworker._control_plane_node",
        as_packages=True,
    )
    assert graph.direct_import_exists(
        importer="fastworker._control_plane_node", imported="fastworker._dashboard"
    )
    for name in PURE:
        imported = graph.find_modules_directly_imported_by(f"fastworker._dashboard.{name}")
        assert "trio" not in imported, name
        assert not imported & {f"fastworker._dashboard.{m}" for m in USES_TRIO}, name
