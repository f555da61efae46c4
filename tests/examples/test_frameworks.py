"""The framework examples against real servers: a control plane process, the web app
under its real server, and at least 100 concurrent HTTP requests (httpx) each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
from examples_support import FASTWORKER, PYTHON, background, free_port, run, wait_for_port

TASKS = "examples.frameworks.tasks"
REQUESTS = 120


@asynccontextmanager
async def control_plane() -> AsyncIterator[str]:
    """`fastworker run-actor-system` with one subworker on a free port; its URL."""
    port = free_port()
    cmd = [*FASTWORKER, "run-actor-system", "--tasks", TASKS, "--port", str(port)]
    cmd += ["--no-discovery", "--subworkers", "1", "--log-level", "warning"]
    async with background(cmd):
        with trio.fail_after(60):
            await wait_for_port(port)
        yield f"ws://127.0.0.1:{port}"


async def hammer(port: int, texts: list[str]) -> list[str]:
    """GET /slug?text=... for every text at once; the slugs in order."""
    slugs: list[str] = [""] * len(texts)
    limits = httpx.Limits(max_connections=len(texts))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as http:

        async def one(index: int, text: str) -> None:
            response = await http.get("/slug", params={"text": text}, timeout=60)
            assert response.status_code == 200, response.text
            slugs[index] = response.json()["slug"]

        async with trio.open_nursery() as nursery:
            for index, text in enumerate(texts):
                nursery.start_soon(one, index, text)
    return slugs


TEXTS = [f"Hello World {i}!" for i in range(REQUESTS)]
SLUGS = [f"hello-world-{i}" for i in range(REQUESTS)]


def with_url(url: str, args: list[str]) -> list[str]:
    """``args`` run with FASTWORKER_URL set (the apps read it), through env(1)."""
    return ["env", f"FASTWORKER_URL={url}", *args]


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            ["-m", "uvicorn", "examples.frameworks.fastapi_app:app", "--port", "{port}"],
            id="fastapi-uvicorn",
        ),
        pytest.param(["-m", "examples.frameworks.flask_app", "--port", "{port}"], id="flask"),
        pytest.param(
            ["-m", "examples.frameworks.django_app", "runserver", "127.0.0.1:{port}", "--noreload"],
            id="django",
        ),
    ],
)
async def test_a_web_app_hands_off_120_concurrent_requests(command: list[str]) -> None:
    """The app serves 120 concurrent requests, each running a task through one shared
    FastWorker client, and every answer is that request's own."""
    port = free_port()
    async with control_plane() as url:
        args = [PYTHON, *(part.replace("{port}", str(port)) for part in command)]
        async with background(with_url(url, args)) as web:
            with trio.fail_after(60):
                await wait_for_port(port)
            with trio.fail_after(120):
                slugs = await hammer(port, TEXTS)
            assert slugs == SLUGS, str(web)


async def test_fastapi_enqueues_and_reads_jobs() -> None:
    """POST /jobs answers 202 with an id at once; GET /jobs/<id> its value; unknown 404."""
    port = free_port()
    async with control_plane() as url:
        app = [PYTHON, "-m", "uvicorn", "examples.frameworks.fastapi_app:app"]
        async with background(with_url(url, [*app, "--port", str(port)])):
            with trio.fail_after(60):
                await wait_for_port(port)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                with trio.fail_after(60):
                    created = await http.post("/jobs", json={"text": "a b a"})
                    assert created.status_code == 202, created.text
                    job = await http.get(f"/jobs/{created.json()['task_id']}")
                    assert job.json() == {"status": "success", "value": {"words": 3, "unique": 2}}
                    assert (await http.get("/jobs/no-such-id")).status_code == 404


async def test_the_plain_script_runs() -> None:
    """The script submits, waits and fans out 100 tasks with the blocking client."""
    async with control_plane() as url:
        with trio.fail_after(120):
            done = await run([PYTHON, "-m", "examples.frameworks.script", "--url", url])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["hello-fastworker", str(sum(range(1, 101)))]
