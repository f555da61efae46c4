"""A trio web app that hands work to FastWorker.

- ``POST /jobs``        body ``{"text": "..."}``: enqueue ``webapp.word_count``; 202 with
                         the task id.
- ``GET /jobs/<id>``    the task's result: 200 when finished, 202 while it is queued or
                         running, 404 for an unknown (or expired) id. ``?wait=SECONDS``
                         waits up to that long for the result first.

It is a plain ASGI application (no framework), served by hypercorn's trio worker. The
FastWorker client lives for the whole life of the app: it is opened in the ASGI
lifespan task, so it belongs to a nursery like everything else in trio.

Run it from the repository root, with a control plane running::

    fastworker run-actor-system --tasks examples.webapp.tasks      # terminal 1
    python -m examples.webapp.app --port 8000                       # terminal 2
    # or: hypercorn --worker-class trio examples.webapp.app:app

``--url`` (or the environment variable ``FASTWORKER_URL``) names the control plane;
without it the app finds one by UDP beacon.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from typing import Any
from urllib.parse import parse_qs

import trio

import fastworker

Scope = dict[str, Any]
Receive = Any
Send = Any

MAX_BODY = 64 * 1024


class WordCountApp:
    """The ASGI application."""

    def __init__(self, fastworker_url: str | None) -> None:
        self.fastworker_url = fastworker_url
        self.client: fastworker.Client | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.http(scope, receive, send)

    # -- lifespan: the client is open exactly while the app serves ------------------------
    async def lifespan(self, receive: Receive, send: Send) -> None:
        """Open the FastWorker client at startup, close it at shutdown."""
        await receive()  # {"type": "lifespan.startup"}
        try:
            async with fastworker.open_client(self.fastworker_url) as client:
                self.client = client
                await send({"type": "lifespan.startup.complete"})
                await receive()  # {"type": "lifespan.shutdown"}
                self.client = None
        except fastworker.ConnectionFailed as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    # -- HTTP -----------------------------------------------------------------------------
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one request."""
        method, path = scope["method"], scope["path"]
        client = self.client
        if client is None:
            await respond(send, 503, {"error": "not connected to FastWorker"})
        elif path == "/jobs" and method == "POST":
            await self.create_job(client, receive, send)
        elif path.startswith("/jobs/") and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode())
            wait = float(query.get("wait", ["0"])[0])
            await self.get_job(client, path.removeprefix("/jobs/"), wait, send)
        else:
            await respond(send, 404, {"error": f"no route for {method} {path}"})

    async def create_job(self, client: fastworker.Client, receive: Receive, send: Send) -> None:
        """Enqueue a word count; answer at once with the task id."""
        try:
            body = json.loads(await read_body(receive))
            text = body["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            await respond(send, 400, {"error": f'send JSON like {{"text": "..."}}: {exc}'})
            return
        try:
            task_id = await client.delay("webapp.word_count", text)
        except fastworker.SubmissionError as exc:  # QueueFull, ShuttingDown, PayloadTooLarge
            await respond(send, 503, {"error": str(exc)})
            return
        await respond(send, 202, {"task_id": task_id, "result": f"/jobs/{task_id}"})

    async def get_job(
        self, client: fastworker.Client, task_id: str, wait: float, send: Send
    ) -> None:
        """Answer the result if the task finished (waiting up to ``wait`` seconds)."""
        result = None
        try:
            if wait > 0:
                with trio.move_on_after(min(wait, 30.0)):
                    result = await client.result(task_id)
            else:
                result = await client.get_result(task_id)
        except fastworker.TaskNotFound:
            await respond(send, 404, {"error": f"unknown task id {task_id!r}"})
            return
        if result is None:
            status = await client.status(task_id)
            if status is None:
                await respond(send, 404, {"error": f"unknown task id {task_id!r}"})
            else:
                await respond(send, 202, {"task_id": task_id, "status": status.value})
            return
        await respond(
            send,
            200,
            {
                "task_id": task_id,
                "status": result.status.value,
                "value": result.value,
                "error": str(result.error) if result.error else None,
            },
        )


async def read_body(receive: Receive) -> bytes:
    """The request body (at most MAX_BODY bytes)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise ValueError("body too large")
        if not message.get("more_body"):
            return body


async def respond(send: Send, status: int, payload: dict[str, Any]) -> None:
    """Send a JSON response."""
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


app = WordCountApp(os.environ.get("FASTWORKER_URL"))
"""For ``hypercorn --worker-class trio examples.webapp.app:app``."""


async def serve(host: str, port: int, fastworker_url: str | None) -> None:
    """Serve with hypercorn's trio worker until Ctrl-C or SIGTERM (a graceful stop)."""
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = "-"

    async def shutdown_trigger() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                return

    await hypercorn_serve(WordCountApp(fastworker_url), config, shutdown_trigger=shutdown_trigger)


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(description="FastWorker web app example")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--url",
        default=os.environ.get("FASTWORKER_URL"),
        help="control plane URL, e.g. ws://127.0.0.1:8765 (default: discover by beacon)",
    )
    args = parser.parse_args()
    trio.run(serve, args.host, args.port, args.url)


if __name__ == "__main__":
    main()
