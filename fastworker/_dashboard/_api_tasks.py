"""``/api/v1/tasks``: submit, read (with ``?wait=``), list, cancel and retry tasks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._messages import Submission
from .._protocol import CancelTask
from ._backend import Backend
from ._requests import parse_limit, parse_submission, parse_wait, read_body
from ._responses import ApiError, error_response
from ._shapes import summary_json
from ._summary import TERMINAL


class TaskRoutes:
    """The handlers of ``/api/v1/tasks`` and ``/api/v1/tasks/{id}``."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def submit(self, request: Request) -> Response:
        """POST /api/v1/tasks"""
        backend = self.backend
        try:
            body = await read_body(request, backend.max_body)
            task_id = await backend.accept(
                parse_submission(body, backend.max_payload, backend.new_id)
            )
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"id": task_id}, status_code=201)

    async def read(self, request: Request) -> Response:
        """GET /api/v1/tasks/{id}?wait=SECONDS"""
        task_id = request.path_params["task_id"]
        try:
            wait = parse_wait(request.query_params.get("wait", "0"))
        except ApiError as exc:
            return exc.response()
        found = await self.backend.task_json(task_id)
        if found is not None and wait > 0 and found["status"] not in TERMINAL:
            await self.backend.hub.wait_terminal(task_id, wait)
            found = await self.backend.task_json(task_id)
        if found is None:
            return error_response(
                404, "TaskNotFound", f"no task {task_id!r} (never submitted, or expired)"
            )
        return JSONResponse(found)

    async def list_tasks(self, request: Request) -> Response:
        """GET /api/v1/tasks?status=&name=&limit= (the dashboard's recent tasks)."""
        try:
            limit = parse_limit(request.query_params.get("limit", "100"))
        except ApiError as exc:
            return exc.response()
        found = self.backend.ring.recent(
            status=request.query_params.get("status") or None,
            name=request.query_params.get("name") or None,
            limit=limit,
        )
        return JSONResponse({"tasks": [summary_json(s) for s in found]})

    async def cancel(self, request: Request) -> Response:
        """DELETE /api/v1/tasks/{id}"""
        cancelled = await self.backend.core.ask(CancelTask(request.path_params["task_id"]))
        return JSONResponse({"cancelled": bool(cancelled)})

    async def retry(self, request: Request) -> Response:
        """POST /api/v1/tasks/{id}/retry: the same name and arguments as a new task."""
        backend = self.backend
        task_id = request.path_params["task_id"]
        found = await backend.task_json(task_id)
        if found is None:
            return error_response(404, "TaskNotFound", f"no task {task_id!r} (or it expired)")
        if found["status"] not in ("failure", "cancelled"):
            return error_response(
                409,
                "NotRetryable",
                f"task {task_id!r} is {found['status']}: only failed or cancelled tasks retry",
            )
        summary = backend.ring.get(task_id)
        if summary is None or summary.payload is None:
            why = (
                f"its arguments ({summary.too_big} bytes) were over the "
                f"{backend.ring.keep_arguments}-byte keep limit"
                if summary is not None and summary.too_big
                else "it is no longer among the dashboard's recent tasks"
            )
            return error_response(
                409, "ArgumentsNotKept", f"cannot retry {task_id!r}: {why}; submit it again"
            )
        sub = Submission(backend.new_id(), summary.name, summary.payload, summary.priority)
        try:
            new_id = await backend.accept(sub)
        except ApiError as exc:
            return exc.response()
        return JSONResponse({"id": new_id}, status_code=201)
