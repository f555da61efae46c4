"""Report tasks: one on demand, one on a calendar schedule."""

from __future__ import annotations

import trio

from fastworker import Priority, task


@task(name="reports.build", priority=Priority.LOW, timeout=120.0)
async def build(report: str, days: int = 7) -> dict[str, object]:
    """Build a report on demand (LOW priority: it waits behind charges)."""
    await trio.sleep(0.01)
    return {"report": report, "days": days, "rows": days * 24}


@task(name="reports.morning_summary", cron="0 9 * * 1-5")
def morning_summary() -> str:
    """At 09:00 UTC, Monday to Friday (standard 5-field cron; add timezone="..." for local)."""
    return "summary sent"
