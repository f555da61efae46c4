"""Flask (threads): one blocking client shared by every request thread.

Run (from the repository root, with a control plane running)::

    FASTWORKER_URL=ws://127.0.0.1:8765 flask --app examples.frameworks.flask_app run --with-threads
"""

from __future__ import annotations

import os

from flask import Flask, abort, request

import fastworker

from .tasks import slugify, word_count

# Made at import, connected on first use (lazy): safe with gunicorn --preload too, a
# forked worker reconnects by itself.
fw = fastworker.connect(os.environ.get("FASTWORKER_URL"), lazy=True)

app = Flask(__name__)


@app.get("/slug")
def slug() -> dict[str, str]:
    """Run a task and wait for its value, at most 10 s (then ResultTimeout: 504)."""
    try:
        return {"slug": fw.call(slugify, request.args["text"], timeout=10.0)}
    except fastworker.ResultTimeout:
        abort(504)


@app.post("/jobs")
def enqueue() -> tuple[dict[str, str], int]:
    """Hand work off and answer at once with the task id."""
    payload = request.get_json(force=True)
    return {"task_id": fw.delay(word_count, payload["text"])}, 202


@app.get("/jobs/<task_id>")
def job(task_id: str) -> dict[str, object]:
    """The result of a finished task; 404 for an unknown id."""
    try:
        result = fw.result(task_id, timeout=10.0)
    except fastworker.TaskNotFound:
        abort(404)
    return {"status": result.status.value, "value": result.value}


if __name__ == "__main__":  # python -m examples.frameworks.flask_app --port 5000
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    port = parser.parse_args().port
    app.run(host="127.0.0.1", port=port, threaded=True)
