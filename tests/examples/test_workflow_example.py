"""The workflows example: fetch -> parse -> fan out -> publish, failure and cancel."""

from __future__ import annotations

import trio
from examples_support import EXAMPLES, PYTHON, run


async def test_workflow_example_runs_the_pipeline_a_failure_and_a_cancel() -> None:
    """`python examples/workflows/pipeline.py` (from the repository root) publishes the
    fanned-out page, reports the failing member's error for a missing page, cancels a
    workflow mid-run (its next member ends cancelled) and exits 0."""
    with trio.fail_after(60):
        done = await run([PYTHON, str(EXAMPLES / "workflows" / "pipeline.py"), "--no-discovery"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "published: [news] Trio-News: 3 images (3 small, 3 large thumbnails)"
    assert lines[1].endswith(": success")
    assert lines[2] == "failed: LookupError: 404 Not Found: https://example.com/missing-page"
    assert lines[3:] == ["cancel: True", "status: cancelled", "the member after it: cancelled"]
