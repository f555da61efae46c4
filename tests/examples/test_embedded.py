"""The embedded example: a trio app that hosts the control plane itself."""

from __future__ import annotations

import trio
from examples_support import EXAMPLES, PYTHON, background, run


async def test_embedded_app_runs_its_work_loop_once() -> None:
    """`python examples/embedded/app.py --once`, from the repository root, hosts a control
    plane, submits three rounds of work to it, prints every result, drains and exits 0.
    (Its task module sits next to the script, which Python puts on the import path.)"""
    app = EXAMPLES / "embedded" / "app.py"
    with trio.fail_after(60):
        done = await run([PYTHON, str(app), "--once", "--no-discovery"])
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("square(1) = 1", "square(3) = 9", "fetch(3) = 'page 3'"):
        assert line in done.stdout
    assert "done: 6 tasks completed, 0 failed" in done.stdout


async def test_embedded_app_stops_gracefully_on_ctrl_c() -> None:
    """`python app.py` in its directory, without --once, keeps submitting until Ctrl-C,
    then drains and exits 0."""
    command = [PYTHON, "app.py", "--no-discovery", "--interval", "0.05"]
    async with background(command, cwd=EXAMPLES / "embedded") as app:
        with trio.fail_after(60):
            await app.wait_for_output("square(2) = 4")
        with trio.fail_after(60):
            assert await app.interrupt() == 0, str(app)
    assert "stopping..." in app.output
    assert "0 failed" in app.output
