"""The task package example: tasks split over modules, with a periodic and a cron task."""

from __future__ import annotations

import json

import trio
from examples_support import EXAMPLES, FASTWORKER, PYTHON, run

PACKAGE = EXAMPLES / "taskpackage"


async def test_cli_lists_the_package_tasks_with_their_schedules() -> None:
    """`fastworker tasks --tasks myapp.tasks`, run from the example's directory, imports the
    package (and so both modules) and lists every task with its schedule."""
    with trio.fail_after(60):
        done = await run([*FASTWORKER, "tasks", "--tasks", "myapp.tasks", "--json"], cwd=PACKAGE)
    assert done.returncode == 0, done.stderr
    tasks = {row["name"]: row for row in json.loads(done.stdout)}
    assert set(tasks) == {
        "billing.charge",
        "billing.sync_invoices",
        "reports.build",
        "reports.morning_summary",
    }
    assert tasks["billing.sync_invoices"]["schedule"] == "every 300s"
    assert tasks["reports.morning_summary"]["schedule"] == "cron 0 9 * * 1-5"
    assert tasks["reports.morning_summary"]["next_fire"].endswith("T09:00:00+00:00")
    assert tasks["billing.charge"]["priority"] == "high"
    assert tasks["billing.charge"]["kind"] == "async"


async def test_the_package_own_tests_pass() -> None:
    """The example's own suite (examples/taskpackage/tests) passes in a pytest of its own:
    registry contents, runs on an in-process cluster through the `fastworker_cluster`
    fixture and its marker, the periodic and the cron schedule in virtual time. It runs in
    a separate process because importing the package registers periodic tasks in the
    global registry, which every control plane of this test session would then run."""
    with trio.fail_after(120):
        done = await run([PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=PACKAGE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
