"""The web app example: HTTP requests enqueue tasks and read their results."""

from __future__ import annotations

import trio
from examples_support import FASTWORKER, PYTHON, background, free_port, http, wait_for_port


async def test_webapp_enqueues_a_task_and_returns_its_result() -> None:
    """`fastworker control-plane` with the example's tasks, and the ASGI app on hypercorn's
    trio worker (`python -m examples.webapp.app`) as two processes: POST /jobs answers 202
    with a task id, GET /jobs/<id>?wait= answers the task's value, unknown ids are 404,
    bad bodies 400; both processes stop with exit code 0 on Ctrl-C."""
    cp_port, web_port = free_port(), free_port()
    control_plane = [*FASTWORKER, "control-plane", "--tasks", "examples.webapp.tasks"]
    control_plane += ["--port", str(cp_port), "--no-discovery"]
    webapp = [PYTHON, "-m", "examples.webapp.app", "--port", str(web_port)]
    webapp += ["--url", f"ws://127.0.0.1:{cp_port}"]
    async with background(control_plane) as cp, background(webapp) as web:
        with trio.fail_after(60):
            # hypercorn binds its port only after the app's lifespan startup, i.e. once
            # the FastWorker client is connected.
            await wait_for_port(web_port)

        with trio.fail_after(30):
            status, created = await http(
                web_port, "POST", "/jobs", {"text": "the cat saw the other cat"}
            )
            assert status == 202, created
            task_id = created["task_id"]
            assert created["result"] == f"/jobs/{task_id}"

            status, job = await http(web_port, "GET", f"/jobs/{task_id}")
            assert status in (200, 202), job  # finished already, or still queued/running

            status, job = await http(web_port, "GET", f"/jobs/{task_id}?wait=20")
            assert status == 200, job
            assert job["status"] == "success"
            assert job["value"] == {"words": 6, "unique": 4}

            status, missing = await http(web_port, "GET", "/jobs/no-such-id")
            assert status == 404, missing
            status, missing = await http(web_port, "GET", "/jobs/no-such-id?wait=5")
            assert status == 404, missing
            status, bad = await http(web_port, "POST", "/jobs", raw=b"not json")
            assert status == 400, bad

        with trio.fail_after(30):
            assert await web.interrupt() == 0, str(web)
        with trio.fail_after(60):
            assert await cp.interrupt() == 0, str(cp)
