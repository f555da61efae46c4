"""The usertests example: a user's own test suite for their tasks, run as they would."""

from __future__ import annotations

import trio
from examples_support import EXAMPLES, PYTHON, run


async def test_user_test_suite_passes() -> None:
    """`python -m pytest` in examples/usertests passes: a retrying task checked in virtual
    time (backoff measured from events), a bad input failing at once, a weekday cron
    followed over a virtual week, and a private Registry. It runs in its own process, with
    its own pytest.ini, as a user's project would, and its global task registry does not
    leak into this session."""
    with trio.fail_after(120):
        done = await run(
            [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=EXAMPLES / "usertests"
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
