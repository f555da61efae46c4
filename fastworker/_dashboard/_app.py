"""The dashboard's ASGI app (starlette): the page, ``/api/v1/...`` and ``/metrics``.

It runs in the control plane's process and trio loop and talks to the actors only by
messages (``ask``/``tell``) and by reading the hub's ring; every wait is bounded.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from itertools import count
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from actors import Future

from .. import _names as names
from .._errors import NotSerializable, PayloadTooLarge
from .._messages import Outcome, Submission
from .._model import Priority
from .._protocol import Accept, CancelTask, GetCacheStatistics, Lookup, Peek, StatusOf, TaskDetail
from .._records import Event
from .._serialization import pack_arguments, unpack, unpack_arguments
from . import _metrics, _page
from ._hub import Hub
from ._json import from_json, to_json
from ._ring import TERMINAL, RecentTasks, TaskSummary

if TYPE_CHECKING:
    from .._control_plane_node import ControlPlaneNode

MAX_WAIT = 300.0
"""Longest ``?wait=`` a read may ask for, in seconds."""
PAGE_INTERVAL = 0.5
"""The page's live stream sends at most one update per this many seconds."""
STATS_INTERVAL = 0.9
"""The statistics the page shows are at most this old (shared by every open page)."""
KEEPALIVE = 15.0
SUBMIT_FIELDS = ("task", "args", "kwargs", "priority", "countdown", "eta", "unique_key")
_STATUS_OF_ERROR = {
    "BadRequest": 400,
    "NotSerializable": 400,
    "ConfigurationError": 400,
    "TaskNotRegistered": 404,
    "TaskNotFound": 404,
    "PayloadTooLarge": 413,
    "QueueFull": 503,
    "ShuttingDown": 503,
}


class ApiError(Exception):
    """An error answered as ``{"error": {"type", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message


def error_response(status: int, type: str, message: str) -> JSONResponse:
    """The API's error body."""
    return JSONResponse({"error": {"type": type, "message": message}}, status_code=status)


def _finite(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, "BadRequest", f"{what} must be a number, got {value!r}")
    return float(value)


def _eta(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError(
                400, "BadRequest", f"eta {value!r} is neither a POSIX timestamp nor ISO 8601"
            ) from None
        if when.tzinfo is None:
            raise ApiError(400, "BadRequest", f"eta {value!r} needs a timezone (e.g. +00:00)")
        return when.timestamp()
    return _finite(value, "eta")


def summary_json(summary: TaskSummary) -> dict[str, Any]:
    """A ring entry as the page's JSON (also ``GET /api/v1/tasks``)."""
    error = summary.error
    return {
        "id": summary.id,
        "name": summary.name,
        "status": summary.status,
        "attempts": summary.attempts,
        "worker": summary.worker,
        "submitted_at": summary.submitted_at,
        "started_at": summary.started_at,
        "completed_at": summary.completed_at,
        "updated_at": summary.updated_at,
        "error": {"type": error.type, "message": error.message} if error else None,
    }


def event_json(event: Event) -> dict[str, Any]:
    """One event of ``/api/v1/events``."""
    return {
        "kind": event.kind,
        "id": event.id,
        "status": event.status,
        "name": event.name,
        "worker": event.worker,
        "at": event.at,
    }


def arguments_preview(payload: bytes | None, limit: int = 2000) -> str:
    """The arguments as short JSON text (for the page)."""
    if payload is None:
        return ""
    try:
        args, kwargs = unpack_arguments(payload)
        text = json.dumps({"args": to_json(args), "kwargs": to_json(kwargs)}, default=repr)
    except Exception as exc:
        text = f"(cannot show: {exc})"
    return text if len(text) <= limit else text[:limit] + " ..."


class SSEResponse(Response):
    """Server-sent events written by ``produce(send_text)`` until the client leaves.

    The producer runs beside a task that watches for the disconnect; either ending
    ends both, so nothing outlives the connection.
    """

    media_type = "text/event-stream"

    def __init__(self, produce: Callable[[Callable[[str], Awaitable[None]]], Awaitable[None]]):
        self.produce = produce
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def send_text(text: str) -> None:
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})

        async with trio.open_nursery() as nursery:

            async def watch_disconnect() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch_disconnect)
            try:
                await self.produce(send_text)
            except OSError:
                pass
            nursery.cancel_scope.cancel()


@attrs.define
class _Snapshot:
    stats: dict[str, Any]
    at: float
    wall: float
    version: int


class DashboardApp:
    """Routes and handlers; ``asgi`` is the app to serve (with the access guard)."""

    def __init__(
        self,
        node: ControlPlaneNode,
        hub: Hub,
        *,
        token: str | None,
        allowed_hosts: frozenset[str] | None,
        cluster: str,
        max_payload: int,
    ) -> None:
        self.node = node
        self.hub = hub
        self.ring: RecentTasks = hub.ring
        self.core = node.system.ref(names.CONTROL_PLANE)
        self.cache = node.system.ref(names.RESULT_CACHE)
        self.cluster = cluster
        self.max_payload = max_payload
        self.max_body = max_payload * 4 + 64 * 1024  # base64 and JSON overhead
        self.token = token
        self._prefix = f"http-{secrets.token_hex(4)}"
        self._ids = count(1)
        self._snapshot: _Snapshot | None = None
        self._snapshot_lock = trio.Lock()
        routes = [
            Route("/", self.index),
            Route("/tasks/{task_id:path}", self.task_page),
            Route("/ui/stream", self.page_stream),
            Route("/metrics", self.metrics),
            Route("/api/v1/tasks", self.submit, methods=["POST"]),
            Route("/api/v1/tasks", self.list_tasks, methods=["GET"]),
            Route("/api/v1/stats", self.stats),
            Route("/api/v1/events", self.events),
            Route("/api/v1/tasks/{task_id:path}/retry", self.retry, methods=["POST"]),
            Route("/api/v1/tasks/{task_id:path}", self.read, methods=["GET"]),
            Route("/api/v1/tasks/{task_id:path}", self.cancel, methods=["DELETE"]),
        ]
        app = Starlette(routes=routes)
        self.asgi: ASGIApp = Guard(app, token, allowed_hosts)

    def new_id(self) -> str:
        """A fresh task id for an HTTP submission."""
        return f"{self._prefix}-{next(self._ids):x}"

    # -- shared reads -----------------------------------------------------------------
    async def snapshot(self, max_age: float = STATS_INTERVAL) -> tuple[dict[str, Any], float]:
        """ClusterStats as a dict and its wall time, shared by every page for ``max_age``
        seconds (the control plane counts its tasks for it: not on every update)."""
        async with self._snapshot_lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._snapshot.at > max_age:
                stats = await self.node.statistics()
                self._snapshot = _Snapshot(
                    attrs.asdict(stats), time.monotonic(), time.time(), self.hub.version
                )
            return self._snapshot.stats, self._snapshot.wall

    async def schedules(self) -> list[dict[str, Any]]:
        """Periodic tasks with their next fire time."""
        times = await self.node.next_fire_times()
        return [
            {"name": s.name, "schedule": s.describe_schedule(), "next": times.get(s.name)}
            for s in self.node.registry.periodic()
        ]

    async def _accept(self, sub: Submission) -> str:
        """Submit one task; its id (with a unique key: the id of the task holding the key).

        Raises:
            ApiError: refused (queue full, draining, unknown task, too large).
        """
        future = Future()
        await self.core.tell(Accept([([sub], future, None)]))
        try:
            answer = await future.wait()
        except Exception as exc:
            name = type(exc).__name__
            raise ApiError(_STATUS_OF_ERROR.get(name, 500), name, str(exc)) from None
        # A name nobody can run is finished at once as TaskNotRegistered.
        if await self.cache.ask(Peek([sub.id])):
            outcome: Outcome | None = await self.cache.ask(Lookup(sub.id))
            if outcome is not None and outcome.error is not None:
                if outcome.error.type == "TaskNotRegistered":
                    raise ApiError(404, "TaskNotRegistered", outcome.error.message)
        if isinstance(answer, list) and answer and isinstance(answer[0], str):
            return answer[0]
        return sub.id

    async def _task_json(self, task_id: str) -> dict[str, Any] | None:
        info = await self.core.ask(TaskDetail(task_id))
        summary = self.ring.get(task_id)
        if info is not None:
            return {
                "id": task_id,
                "name": info["name"],
                "status": info["status"],
                "value": None,
                "error": None,
                "attempts": info["attempts"],
                "worker": info["worker"],
                "started_at": summary.started_at if summary is not None else None,
                "completed_at": None,
            }
        # Not a queued or running task: perhaps a workflow (or a member waiting for its
        # turn), which the control plane knows by status only. Asked before the cache:
        # whatever finished before this answer is in the cache by the next question.
        status = await self.core.ask(StatusOf(task_id))
        if status is not None:
            return {
                "id": task_id,
                "name": summary.name if summary is not None else "",
                "status": status,
                "value": None,
                "error": None,
                "attempts": summary.attempts if summary is not None else 0,
                "worker": None,
                "started_at": None,
                "completed_at": None,
            }
        outcome: Outcome | None = await self.cache.ask(Lookup(task_id))
        if outcome is not None:
            error = outcome.error
            return {
                "id": task_id,
                "name": outcome.name or (summary.name if summary else ""),
                "status": outcome.status,
                "value": to_json(unpack(outcome.value)) if outcome.value is not None else None,
                "error": {
                    "type": error.type,
                    "message": error.message,
                    "traceback": error.traceback,
                }
                if error is not None
                else None,
                "attempts": outcome.attempt,
                "worker": outcome.worker,
                "started_at": outcome.started_at,
                "completed_at": outcome.completed_at,
            }
        if summary is not None and summary.terminal:
            # The result expired from the cache; the page's ring still has the summary.
            error = summary.error
            return {
                "id": task_id,
                "name": summary.name,
                "status": summary.status,
                "value": None,
                "error": {
                    "type": error.type,
                    "message": error.message,
                    "traceback": error.traceback,
                }
                if error is not None
                else None,
                "attempts": summary.attempts,
                "worker": summary.worker,
                "started_at": summary.started_at,
                "completed_at": summary.completed_at,
            }
        return None

    # -- API --------------------------------------------------------------------------
    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise ApiError(
                413, "PayloadTooLarge", f"the body is {declared} bytes, over {self.max_body}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise ApiError(413, "PayloadTooLarge", f"the body is over {self.max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def submit(self, request: Request) -> Response:
        """POST /api/v1/tasks"""
        try:
            task_id = await self._accept(self._submission(await self._body(request)))
        except ApiError as exc:
            return error_response(exc.status, exc.type, exc.message)
        return JSONResponse({"id": task_id}, status_code=201)

    def _submission(self, body: bytes) -> Submission:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", 'the body must be a JSON object with a "task"')
        extra = sorted(set(data) - set(SUBMIT_FIELDS))
        if extra:
            raise ApiError(
                400,
                "BadRequest",
                f"unknown field(s) {', '.join(extra)}: use {', '.join(SUBMIT_FIELDS)}",
            )
        name = data.get("task")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "BadRequest", '"task" must be the task name (a string)')
        args = data.get("args") or []
        kwargs = data.get("kwargs") or {}
        if not isinstance(args, list):
            raise ApiError(400, "BadRequest", '"args" must be a JSON array')
        if not isinstance(kwargs, dict):
            raise ApiError(400, "BadRequest", '"kwargs" must be a JSON object')
        priority = data.get("priority")
        prio: int | None = None
        if priority is not None:
            try:
                prio = int(Priority.parse(priority))
            except ValueError as exc:
                raise ApiError(400, "BadRequest", str(exc)) from None
        countdown = _finite(data.get("countdown"), "countdown")
        eta = _eta(data.get("eta"))
        if countdown is not None and eta is not None:
            raise ApiError(400, "BadRequest", "give countdown or eta, not both")
        try:
            payload = pack_arguments(from_json(args), from_json(kwargs), limit=self.max_payload)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        except NotSerializable as exc:
            raise ApiError(400, "NotSerializable", str(exc)) from None
        except PayloadTooLarge as exc:
            raise ApiError(413, "PayloadTooLarge", str(exc)) from None
        fields: dict[str, Any] = {}
        unique_key = data.get("unique_key")
        if unique_key is not None:
            if not isinstance(unique_key, str):
                raise ApiError(400, "BadRequest", '"unique_key" must be a string')
            if "unique_key" not in attrs.fields_dict(Submission):
                raise ApiError(
                    400, "BadRequest", "this control plane does not support unique_key yet"
                )
            fields["unique_key"] = unique_key
        return Submission(
            self.new_id(),
            name,
            payload,
            prio,
            eta,
            None if countdown is None else max(0.0, countdown),
            **fields,
        )

    async def read(self, request: Request) -> Response:
        """GET /api/v1/tasks/{id}?wait=SECONDS"""
        task_id = request.path_params["task_id"]
        text = request.query_params.get("wait", "0")
        try:
            wait = float(text)
        except ValueError:
            wait = -1.0
        if not (0 <= wait <= MAX_WAIT) or not math.isfinite(wait):
            return error_response(
                400, "BadRequest", f"wait must be 0 to {MAX_WAIT:g} seconds, got {text!r}"
            )
        found = await self._task_json(task_id)
        if found is not None and wait > 0 and found["status"] not in TERMINAL:
            await self.hub.wait_terminal(task_id, wait)
            found = await self._task_json(task_id)
        if found is None:
            return error_response(
                404, "TaskNotFound", f"no task {task_id!r} (never submitted, or expired)"
            )
        return JSONResponse(found)

    async def list_tasks(self, request: Request) -> Response:
        """GET /api/v1/tasks?status=&name=&limit= (the dashboard's recent tasks)."""
        try:
            limit = max(1, min(1000, int(request.query_params.get("limit", "100"))))
        except ValueError:
            return error_response(400, "BadRequest", "limit must be a whole number")
        found = self.ring.recent(
            status=request.query_params.get("status") or None,
            name=request.query_params.get("name") or None,
            limit=limit,
        )
        return JSONResponse({"tasks": [summary_json(s) for s in found]})

    async def cancel(self, request: Request) -> Response:
        """DELETE /api/v1/tasks/{id}"""
        cancelled = await self.core.ask(CancelTask(request.path_params["task_id"]))
        return JSONResponse({"cancelled": bool(cancelled)})

    async def retry(self, request: Request) -> Response:
        """POST /api/v1/tasks/{id}/retry: the same name and arguments as a new task."""
        task_id = request.path_params["task_id"]
        found = await self._task_json(task_id)
        if found is None:
            return error_response(404, "TaskNotFound", f"no task {task_id!r} (or it expired)")
        if found["status"] not in ("failure", "cancelled"):
            return error_response(
                409,
                "NotRetryable",
                f"task {task_id!r} is {found['status']}: only failed or cancelled tasks retry",
            )
        summary = self.ring.get(task_id)
        if summary is None or summary.payload is None:
            why = (
                f"its arguments ({summary.too_big} bytes) were over the "
                f"{self.ring.keep_arguments}-byte keep limit"
                if summary is not None and summary.too_big
                else "it is no longer among the dashboard's recent tasks"
            )
            return error_response(
                409, "ArgumentsNotKept", f"cannot retry {task_id!r}: {why}; submit it again"
            )
        sub = Submission(self.new_id(), summary.name, summary.payload, summary.priority)
        try:
            new_id = await self._accept(sub)
        except ApiError as exc:
            return error_response(exc.status, exc.type, exc.message)
        return JSONResponse({"id": new_id}, status_code=201)

    async def stats(self, request: Request) -> Response:
        """GET /api/v1/stats"""
        return JSONResponse(attrs.asdict(await self.node.statistics()))

    async def events(self, request: Request) -> Response:
        """GET /api/v1/events: one SSE ``data:`` line per task or worker event."""
        hub = self.hub

        async def produce(send: Callable[[str], Awaitable[None]]) -> None:
            stream = await hub.open_stream()
            try:
                await send("retry: 2000\n: connected\n\n")
                while True:
                    batch = None
                    with trio.move_on_after(KEEPALIVE):
                        batch = await stream.receive.receive()
                    if batch is None:
                        await send(": keep-alive\n\n")
                        continue
                    parts = []
                    if stream.dropped:
                        lost, stream.dropped = stream.dropped, 0
                        parts.append(
                            "data: " + json.dumps({"kind": "dropped", "count": lost}) + "\n\n"
                        )
                    parts += ["data: " + json.dumps(event_json(e)) + "\n\n" for e in batch]
                    await send("".join(parts))
            finally:
                hub.close_stream(stream)

        return SSEResponse(produce)

    async def metrics(self, request: Request) -> Response:
        """GET /metrics"""
        stats = attrs.asdict(await self.node.statistics())
        cache = await self.cache.ask(GetCacheStatistics())
        journal = self.hub.journal_commits if self.node.journal is not None else None
        body = _metrics.render(
            _metrics.collect(stats, cache, self.ring, journal, self.hub.cpu_seconds)
        )
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- the page ---------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        """GET / (``?status=`` and ``?name=`` filter the recent tasks)."""
        status = request.query_params.get("status") or ""
        name = request.query_params.get("name") or ""
        html = _page.render_index(
            cluster=self.cluster,
            url=self.node.url,
            stats=(await self.snapshot())[0],
            schedules=await self.schedules(),
            tasks=[summary_json(s) for s in self.ring.recent(status=status, name=name)],
            ring=self.ring.statistics(),
            since=self.ring.change_count,
            status=status,
            name=name,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def task_page(self, request: Request) -> Response:
        """GET /tasks/{id}: one task's detail."""
        task_id = request.path_params["task_id"]
        found = await self._task_json(task_id)
        summary = self.ring.get(task_id)
        payload = summary.payload if summary is not None else None
        if payload is None:
            info = await self.core.ask(TaskDetail(task_id))
            payload = info["payload"] if info is not None else None
        html = _page.render_task(
            cluster=self.cluster,
            task_id=task_id,
            task=found,
            summary=summary_json(summary) if summary is not None else None,
            arguments=arguments_preview(payload)
            if payload is not None
            else (
                f"({summary.too_big} bytes packed: not kept)" if summary and summary.too_big else ""
            ),
            value=json.dumps(found["value"], default=repr)[:4000] if found else "",
        )
        return HTMLResponse(
            html, status_code=200 if found else 404, headers={"Cache-Control": "no-store"}
        )

    async def page_stream(self, request: Request) -> Response:
        """GET /ui/stream?since=N: the page's live updates, coalesced, at most 2 per second."""
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            since = 0
        ring = self.ring
        hub = self.hub

        async def produce(send: Callable[[str], Awaitable[None]]) -> None:
            seen = min(since, ring.change_count) if since > 0 else ring.change_count
            await send("retry: 2000\n\n")
            version = -1
            while True:
                fresh = self._snapshot is not None and self._snapshot.version >= version
                if version == hub.version and fresh:
                    # Nothing new, and the statistics shown already include the last
                    # change (else one more update follows with fresher ones).
                    with trio.move_on_after(KEEPALIVE):
                        await hub.wait_changed()
                version = hub.version
                stats, at = await self.snapshot()
                began = time.thread_time()
                seen, changed = ring.changed_since(seen, 100)
                update = {
                    "at": at,
                    "stats": stats,
                    "tasks": [summary_json(s) for s in changed],
                    "ring": ring.statistics(),
                }
                text = "data: " + json.dumps(update, default=repr) + "\n\n"
                hub.cpu_seconds += time.thread_time() - began
                await send(text)
                await trio.sleep(PAGE_INTERVAL)

        return SSEResponse(produce)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """The access rules in front of the app.

    - With a token, every request needs ``Authorization: Bearer <token>``, else 401 (a
      page request gets the small page that asks for the token).
    - Without one (loopback only), the Host header must name this machine, so a web
      page elsewhere cannot reach the API through DNS rebinding.
    - A request that changes something and carries an ``Origin`` must come from this
      origin (no cross-site forms); no CORS headers are ever sent.
    """

    def __init__(self, app: ASGIApp, token: str | None, allowed_hosts: frozenset[str] | None):
        self.app = app
        self.token = token.encode() if token is not None else None
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.allowed_hosts is not None:
            hostname = urlsplit(f"//{host}").hostname or ""
            if hostname not in self.allowed_hosts:
                response: Response = error_response(
                    403, "Forbidden", f"host {host!r} is not this dashboard's address"
                )
                await response(scope, receive, send)
                return
        if self.token is not None:
            given = headers.get("authorization", "")
            scheme, _, credential = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                credential.strip().encode(), self.token
            ):
                if scope["method"] == "GET" and "text/html" in headers.get("accept", ""):
                    response = HTMLResponse(_page.render_login(), status_code=401)
                else:
                    response = error_response(
                        401,
                        "Unauthorized",
                        "this dashboard needs 'Authorization: Bearer <token>' (the token "
                        "is in the file given to --dashboard-token-file)",
                    )
                response.headers["WWW-Authenticate"] = 'Bearer realm="fastworker"'
                await response(scope, receive, send)
                return
        if scope["method"] not in _SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != host:
                response = error_response(
                    403, "Forbidden", f"cross-origin request from {origin!r} refused"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
