"""The JSON the API and the page show of tasks and events (trio-free).

A task is read from whichever part knows it best (see ``Backend.task_json``): the
control plane while it is queued or running, its status only for a workflow or a
member waiting its turn, the result cache once it finished, and the ring's summary
once the cache forgot it. Each has its function here; all give the same keys.
"""

from __future__ import annotations

import json
from typing import Any

from .._messages import Outcome, WireError
from .._records import Event
from .._serialization import unpack, unpack_arguments
from ._json import to_json
from ._summary import TaskSummary


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


def _error_json(error: WireError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def live_task_json(
    task_id: str, info: dict[str, Any], summary: TaskSummary | None
) -> dict[str, Any]:
    """A queued or running task: the control plane's ``TaskDetail`` answer ``info``."""
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


def status_task_json(task_id: str, status: str, summary: TaskSummary | None) -> dict[str, Any]:
    """A task the control plane knows by status only (a workflow, or a waiting member)."""
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


def outcome_task_json(
    task_id: str, outcome: Outcome, summary: TaskSummary | None
) -> dict[str, Any]:
    """A finished task, from its outcome in the result cache (the value as JSON)."""
    return {
        "id": task_id,
        "name": outcome.name or (summary.name if summary else ""),
        "status": outcome.status,
        "value": to_json(unpack(outcome.value)) if outcome.value is not None else None,
        "error": _error_json(outcome.error),
        "attempts": outcome.attempt,
        "worker": outcome.worker,
        "started_at": outcome.started_at,
        "completed_at": outcome.completed_at,
    }


def expired_task_json(summary: TaskSummary) -> dict[str, Any]:
    """A finished task whose result expired from the cache: the ring's summary of it."""
    return {
        "id": summary.id,
        "name": summary.name,
        "status": summary.status,
        "value": None,
        "error": _error_json(summary.error),
        "attempts": summary.attempts,
        "worker": summary.worker,
        "started_at": summary.started_at,
        "completed_at": summary.completed_at,
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
