"""The dashboard page: server-rendered HTML; the style sheet and script are inlined.

Inlining keeps the page one request, so a page behind a token needs no
unauthenticated asset route. Every text from tasks is escaped.
"""

from __future__ import annotations

import json
import time
from functools import cache
from html import escape
from importlib import resources
from typing import Any

STATUSES = (
    "pending",
    "scheduled",
    "queued",
    "running",
    "retrying",
    "success",
    "failure",
    "cancelled",
)
PRIORITIES = ("critical", "high", "normal", "low")
_KNOWN_STATS = {
    "queued",
    "scheduled",
    "running",
    "workers",
    "submitted",
    "completed",
    "failed",
    "retried",
    "redelivered",
    "results_cached",
    "draining",
}


_LABELS = {"waiting": "waiting for a worker", "suspects": "suspects (run alone)"}


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _head(title: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_asset('dashboard.css')}</style></head>"
    )


def _header(cluster: str, url: str = "") -> str:
    return (
        "<header><a class='brand' href='/'>FastWorker</a>"
        f"<span class='where'>cluster <b>{escape(cluster)}</b> {escape(url)}</span>"
        "<span id='live' class='live off' title='live updates'>connecting</span></header>"
    )


def task_row(task: dict[str, Any]) -> str:
    """One row of the recent-tasks table (the script builds the same markup)."""
    status = task["status"]
    error = task.get("error")
    actions = ""
    if status not in ("success", "failure", "cancelled"):
        actions += f"<button data-action='cancel' data-id='{_attr(task['id'])}'>Cancel</button>"
    if status in ("failure", "cancelled"):
        actions += f"<button data-action='retry' data-id='{_attr(task['id'])}'>Retry</button>"
    why = (
        f"<div class='why'>{escape(error['type'])}: {escape(error['message'][:160])}</div>"
        if error
        else ""
    )
    return (
        f"<tr data-id='{_attr(task['id'])}' data-status='{_attr(status)}' "
        f"data-name='{_attr(task['name'])}'>"
        f"<td class='id'><a href='/tasks/{_attr(task['id'])}'>{escape(task['id'])}</a></td>"
        f"<td>{escape(task['name'])}{why}</td>"
        f"<td><span class='badge st-{_attr(status)}'>{escape(status)}</span></td>"
        f"<td class='num'>{task['attempts']}</td>"
        f"<td>{escape(task['worker'] or '')}</td>"
        f"<td class='time'>{_when(task['updated_at'])}</td>"
        f"<td class='actions'>{actions}</td></tr>"
    )


def _card(label: str, key: str, value: Any, extra: str = "") -> str:
    return (
        f"<div class='card {extra}'><span class='label'>{escape(label)}</span>"
        f"<b data-stat='{key}'>{escape(str(value))}</b></div>"
    )


def _workers(stats: dict[str, Any]) -> str:
    rows = (
        "".join(
            f"<tr><td>{escape(w['id'])}</td><td class='num'>{w['slots']}</td>"
            f"<td class='num'>{w['running']}</td><td class='num'>{w['free']}</td>"
            f"<td class='num'>{w['completed']}</td></tr>"
            for w in stats["workers"]
        )
        or "<tr><td colspan='5' class='muted'>no worker connected</td></tr>"
    )
    return rows


def _queues(stats: dict[str, Any]) -> str:
    queued = stats["queued"]
    rows = "".join(
        f"<tr><td>{p}</td><td class='num' data-stat='queued.{p}'>{queued[p]}</td></tr>"
        for p in PRIORITIES
    )
    by_name = stats.get("queues")
    if isinstance(by_name, dict):
        for queue, value in sorted(by_name.items()):
            total = sum(value.values()) if isinstance(value, dict) else value
            rows += (
                f"<tr><td>queue {escape(str(queue))}</td>"
                f"<td class='num'>{escape(str(total))}</td></tr>"
            )
    return rows


def _extra_text(value: Any) -> str:
    """A table of counts as ``name: count, ...`` ("none" when empty); JSON otherwise
    (dashboard.js's ``extraText`` renders live updates the same way)."""
    if isinstance(value, dict) and all(isinstance(v, int | float) for v in value.values()):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "none"
    return json.dumps(value, default=repr)


def _extras(stats: dict[str, Any]) -> str:
    """Statistics this page has no special place for (e.g. fields added later)."""
    out = ""
    for key, value in stats.items():
        if key in _KNOWN_STATS:
            continue
        label = _LABELS.get(key, key.replace("_", " "))
        scalar = isinstance(value, int | float | str)
        text = value if scalar else _extra_text(value)
        width = "" if scalar else " wide"
        out += (
            f"<div class='card{width}'><span class='label'>{escape(label)}</span>"
            f"<b data-extra='{_attr(key)}'>{escape(str(text))[:400]}</b></div>"
        )
    return out


def render_index(
    *,
    cluster: str,
    url: str,
    stats: dict[str, Any],
    schedules: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    ring: dict[str, Any],
    since: int,
    status: str,
    name: str,
) -> str:
    """The overview page."""
    queued_total = sum(stats["queued"].values())
    slots = sum(w["slots"] for w in stats["workers"])
    busy = sum(w["running"] for w in stats["workers"])
    options = "".join(
        f"<option value='{s}'{' selected' if s == status else ''}>{s or 'any status'}</option>"
        for s in ("", *STATUSES)
    )
    schedule_rows = (
        "".join(
            f"<tr><td>{escape(s['name'])}</td><td>{escape(s['schedule'])}</td>"
            f"<td class='time'>{_when(s['next'])}</td></tr>"
            for s in schedules
        )
        or "<tr><td colspan='3' class='muted'>no periodic task</td></tr>"
    )
    cards = (
        _card("workers", "workers", len(stats["workers"]))
        + _card("busy / slots", "slots", f"{busy} / {slots}")
        + _card("queued", "queued_total", queued_total)
        + _card("scheduled", "scheduled", stats["scheduled"])
        + _card("running", "running", stats["running"])
        + _card("tasks/s", "rate", "-")
        + _card("completed", "completed", stats["completed"])
        + _card("failed", "failed", stats["failed"], "bad")
        + _card("retried", "retried", stats["retried"])
        + _extras(stats)
    )
    draining = "<p class='banner'>draining: no new work is taken</p>" if stats["draining"] else ""
    return (
        _head(f"FastWorker · {cluster}")
        + f"<body data-since='{since}' data-filter-status='{_attr(status)}' "
        f"data-filter-name='{_attr(name)}'>"
        + _header(cluster, url)
        + "<main>"
        + draining
        + f"<section class='cards' id='cards'>{cards}</section>"
        + "<div class='grid'>"
        + "<section><h2>Workers</h2><div class='scroll'><table id='workers'><thead><tr>"
        "<th>worker</th><th>slots</th><th>busy</th><th>free</th><th>done</th>"
        f"</tr></thead><tbody>{_workers(stats)}</tbody></table></div></section>"
        + "<section><h2>Queues</h2><div class='scroll'><table id='queues'><thead><tr>"
        f"<th>priority</th><th>queued</th></tr></thead><tbody>{_queues(stats)}</tbody>"
        "</table></div></section>"
        + "<section><h2>Schedules</h2><div class='scroll'><table id='schedules'><thead><tr>"
        "<th>task</th><th>schedule</th><th>next</th></tr></thead>"
        f"<tbody>{schedule_rows}</tbody></table></div></section>"
        + "</div>"
        + "<section><h2>Recent tasks</h2>"
        "<form class='filters' method='get' action='/'>"
        f"<select name='status' aria-label='status'>{options}</select>"
        f"<input name='name' placeholder='task name' value='{_attr(name)}' aria-label='name'>"
        "<button type='submit'>Filter</button></form>"
        "<div class='scroll'><table id='tasks'><thead><tr><th>id</th><th>task</th>"
        "<th>status</th><th>tries</th><th>worker</th><th>updated</th><th></th></tr></thead>"
        f"<tbody>{''.join(task_row(t) for t in tasks)}</tbody></table></div>"
        f"<p class='muted small' id='ring'>keeps the last {ring['max_entries']:,} tasks "
        f"({ring['max_bytes'] // (1024 * 1024)} MiB); now "
        f"<span id='ring-entries'>{ring['entries']:,}</span></p></section>"
        + "</main><div id='toast' role='status'></div>"
        + f"<script>{_asset('dashboard.js')}</script></body></html>"
    )


def render_task(
    *,
    cluster: str,
    task_id: str,
    task: dict[str, Any] | None,
    summary: dict[str, Any] | None,
    arguments: str,
    value: str,
) -> str:
    """One task's detail page."""
    body = ""
    if task is None:
        body = f"<p class='banner'>No task {escape(task_id)}: never submitted, or expired.</p>"
    else:
        status = task["status"]
        rows = [
            ("task", escape(task["name"])),
            (
                "status",
                f"<span class='badge st-{_attr(status)}' id='status'>{escape(status)}</span>",
            ),
            ("attempts", str(task["attempts"])),
            ("worker", escape(task["worker"] or "")),
        ]
        if summary is not None:
            rows.append(("submitted", _when(summary["submitted_at"])))
        rows.append(("started", _when(task["started_at"])))
        rows.append(("completed", _when(task["completed_at"])))
        if task["started_at"] and task["completed_at"]:
            rows.append(("run time", f"{task['completed_at'] - task['started_at']:.3f} s"))
        if arguments:
            rows.append(("arguments", f"<code>{escape(arguments)}</code>"))
        if status == "success":
            rows.append(("value", f"<code>{escape(value)}</code>"))
        table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        actions = ""
        if status not in ("success", "failure", "cancelled"):
            actions += f"<button data-action='cancel' data-id='{_attr(task_id)}'>Cancel</button>"
        if status in ("failure", "cancelled"):
            actions += f"<button data-action='retry' data-id='{_attr(task_id)}'>Retry</button>"
        error = task["error"]
        error_html = ""
        if error:
            error_html = (
                f"<h2>Error</h2><p class='error'><b>{escape(error['type'])}</b>: "
                f"{escape(error['message'])}</p>"
            )
            if error.get("traceback"):
                error_html += f"<pre class='traceback'>{escape(error['traceback'])}</pre>"
        body = (
            f"<div class='scroll'><table class='detail'>{table}</table></div>"
            f"<p class='actions'>{actions}</p>{error_html}"
        )
    return (
        _head(f"{task_id} · FastWorker")
        + f"<body data-task='{_attr(task_id)}'>"
        + _header(cluster)
        + f"<main><p><a href='/'>&larr; overview</a></p><h1 class='task-id'>{escape(task_id)}</h1>"
        + body
        + "</main><div id='toast' role='status'></div>"
        + f"<script>{_asset('dashboard.js')}</script></body></html>"
    )


def render_login() -> str:
    """The page a browser gets without the token: it asks once and keeps it."""
    return (
        _head("FastWorker · token") + "<body class='login'><main><h1>FastWorker</h1>"
        "<form id='login'><label for='token'>This dashboard needs its access token "
        "(the contents of <code>--dashboard-token-file</code>).</label>"
        "<input id='token' type='password' autocomplete='current-password' required>"
        "<button type='submit'>Open</button><p id='login-error' class='error'></p></form>"
        "</main>" + f"<script>{_asset('login.js')}</script></body></html>"
    )
