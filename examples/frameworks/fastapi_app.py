"""FastAPI (asyncio, under uvicorn): one FastWorker client for the app's lifetime.

Run (from the repository root, with a control plane running)::

    FASTWORKER_URL=ws://127.0.0.1:8765 uvicorn examples.frameworks.fastapi_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request

import fastworker

from .tasks import slugify, word_count


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client, opened at start-up and shared by every request: no per-request set-up.
    async with fastworker.open_client(os.environ.get("FASTWORKER_URL")) as client:
        app.state.fastworker = client
        yield


app = FastAPI(lifespan=lifespan)


def client_of(request: Request) -> fastworker.Client:
    client: fastworker.Client = request.app.state.fastworker
    return client


@app.get("/slug")
async def slug(text: str, request: Request) -> dict[str, str]:
    """Run a task and wait for its value (typed: ``call`` returns ``str`` here)."""
    return {"slug": await client_of(request).call(slugify, text)}


@app.post("/jobs", status_code=202)
async def enqueue(payload: dict[str, str], request: Request) -> dict[str, str]:
    """Hand work off and answer at once with the task id."""
    task_id = await client_of(request).delay(word_count, payload["text"])
    return {"task_id": task_id}


@app.get("/jobs/{task_id}")
async def job(task_id: str, request: Request) -> dict[str, object]:
    """The result of a finished task; 404 for an unknown id."""
    try:
        result = await client_of(request).result(task_id)
    except fastworker.TaskNotFound:
        raise HTTPException(status_code=404, detail="no such job") from None
    return {"status": result.status.value, "value": result.value}
