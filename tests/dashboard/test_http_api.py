"""The HTTP API (``/api/v1``) over real HTTP against ``fastworker run-actor-system``.

Each test starts a real system (control plane plus a subworker process) with its
dashboard on a free loopback port and talks to it with httpx (one test with curl).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest
import trio
from dash_support import HERE, TASK_KEYS, base_env, run_system


async def test_submit_read_wait_and_bytes_round_trip() -> None:
    """POST /api/v1/tasks answers 201 with an id; GET ?wait= long-polls until the result;
    bytes travel as {"$bytes": base64} both ways; the read has every documented field."""
    async with run_system() as system, system.http() as http:
        response = await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [20, 22]})
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        read = (await http.get(f"/api/v1/tasks/{task_id}", params={"wait": 30})).json()
        assert read["status"] == "success"
        assert read["value"] == 42
        assert set(read) >= TASK_KEYS
        assert read["name"] == "dash.add" and read["attempts"] == 1 and read["worker"]
        assert read["completed_at"] >= read["started_at"] > 0

        payload = {"blob": {"$bytes": "AAEC/w=="}, "list": [1, "x", None]}
        response = await http.post(
            "/api/v1/tasks", json={"task": "dash.echo", "kwargs": {"value": payload}}
        )
        echo_id = response.json()["id"]
        read = (await http.get(f"/api/v1/tasks/{echo_id}?wait=30")).json()
        assert read["value"] == payload

        # A long-poll returns as soon as the task finishes, not after the whole wait.
        response = await http.post("/api/v1/tasks", json={"task": "dash.nap", "args": [0.3, 7]})
        nap_id = response.json()["id"]
        with trio.fail_after(20):
            read = (await http.get(f"/api/v1/tasks/{nap_id}?wait=60")).json()
        assert read["status"] == "success" and read["value"] == 7


async def test_errors_have_a_type_and_a_message_naming_what_was_wrong() -> None:
    """400 bad body, 404 unknown task (named) or id, 413 too large, each as
    {"error": {"type", "message"}}; a bad ?wait= is a 400."""
    async with run_system("--max-payload", "2000") as system, system.http() as http:
        cases = [
            (b"not json", 400, "BadRequest", "not JSON"),
            (b"[1, 2]", 400, "BadRequest", "JSON object"),
            (b'{"task": "dash.add", "colour": 1}', 400, "BadRequest", "colour"),
            (b'{"task": "dash.add", "args": {"x": 1}}', 400, "BadRequest", '"args"'),
            (b'{"task": "dash.add", "priority": "urgent"}', 400, "BadRequest", "urgent"),
            (b'{"task": "dash.add", "args": [{"$bytes": "%%%"}]}', 400, "BadRequest", "base64"),
            (b'{"task": "no.such.task"}', 404, "TaskNotRegistered", "no.such.task"),
            (
                json.dumps({"task": "dash.echo", "args": ["x" * 5000]}).encode(),
                413,
                "PayloadTooLarge",
                "reference",
            ),
        ]
        for body, status, kind, words in cases:
            response = await http.post(
                "/api/v1/tasks", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == status, (body, response.text)
            error = response.json()["error"]
            assert error["type"] == kind, (body, error)
            assert words in error["message"], (body, error)
        missing = await http.get("/api/v1/tasks/nobody-submitted-this")
        assert missing.status_code == 404
        assert "nobody-submitted-this" in missing.json()["error"]["message"]
        bad_wait = await http.get("/api/v1/tasks/x?wait=forever")
        assert bad_wait.status_code == 400 and "wait" in bad_wait.json()["error"]["message"]
        huge = await http.post(
            "/api/v1/tasks", content=b"x" * 200_000, headers={"Content-Type": "application/json"}
        )
        assert huge.status_code == 413


async def test_unique_key_returns_the_existing_id() -> None:
    """A second submission with the same unique_key, while the first is unfinished,
    answers the first task's id and runs nothing new."""
    async with run_system() as system, system.http() as http:
        body = {"task": "dash.nap", "args": [2, 5], "unique_key": "nap:once"}
        first = await http.post("/api/v1/tasks", json=body)
        second = await http.post("/api/v1/tasks", json=body)
        assert first.status_code == second.status_code == 201
        assert second.json()["id"] == first.json()["id"]
        stats = (await http.get("/api/v1/stats")).json()
        assert stats["submitted"] == 1


async def test_queue_full_is_503() -> None:
    """A submission past --max-queue is refused with 503 QueueFull."""
    async with run_system("--max-queue", "1") as system, system.http() as http:
        first = await http.post("/api/v1/tasks", json={"task": "dash.nap", "args": [30]})
        assert first.status_code == 201
        second = await http.post("/api/v1/tasks", json={"task": "dash.nap", "args": [30]})
        assert second.status_code == 503, second.text
        assert second.json()["error"]["type"] == "QueueFull"


async def test_cancel_and_retry() -> None:
    """DELETE cancels a scheduled task ({"cancelled": true}, then false); retry runs a failed
    task again as a new task with the same arguments; a succeeded one is not retried."""
    async with run_system() as system, system.http() as http:
        response = await http.post(
            "/api/v1/tasks", json={"task": "dash.add", "args": [1, 1], "countdown": 600}
        )
        later = response.json()["id"]
        assert (await http.get(f"/api/v1/tasks/{later}")).json()["status"] == "scheduled"
        assert (await http.delete(f"/api/v1/tasks/{later}")).json() == {"cancelled": True}
        assert (await http.delete(f"/api/v1/tasks/{later}")).json() == {"cancelled": False}
        read = (await http.get(f"/api/v1/tasks/{later}")).json()
        assert read["status"] == "cancelled"

        retried = await http.post(f"/api/v1/tasks/{later}/retry")
        assert retried.status_code == 201
        again = (await http.get(f"/api/v1/tasks/{retried.json()['id']}?wait=30")).json()
        assert again["status"] == "success" and again["value"] == 2

        failed = (
            await http.post("/api/v1/tasks", json={"task": "dash.boom", "args": ["exploded 7"]})
        ).json()["id"]
        read = (await http.get(f"/api/v1/tasks/{failed}?wait=30")).json()
        assert read["status"] == "failure"
        assert read["error"]["type"] == "ValueError"
        assert "inner" in read["error"]["traceback"]
        response = await http.post(f"/api/v1/tasks/{failed}/retry")
        assert response.status_code == 201
        new_id = response.json()["id"]
        assert new_id != failed
        read = (await http.get(f"/api/v1/tasks/{new_id}?wait=30")).json()
        assert read["status"] == "failure" and read["error"]["message"] == "exploded 7"

        refused = await http.post(f"/api/v1/tasks/{again['id']}/retry")
        assert refused.status_code == 409
        assert "success" in refused.json()["error"]["message"]
        assert (await http.post("/api/v1/tasks/nope/retry")).status_code == 404


async def test_stats_and_events_stream() -> None:
    """/api/v1/stats has the fields of client.stats(); /api/v1/events streams one JSON
    object per event, with a submitted task's queued, running and success."""
    async with run_system() as system, system.http() as http:
        stats = (await http.get("/api/v1/stats")).json()
        assert {"queued", "scheduled", "running", "workers", "submitted", "completed"} <= set(stats)
        assert any(w["id"] != "local" and w["slots"] == 8 for w in stats["workers"])
        seen: list[dict] = []
        async with http.stream("GET", "/api/v1/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert "access-control-allow-origin" not in stream.headers
            lines = stream.aiter_lines()
            first = await lines.__anext__()
            assert first.startswith("retry:")
            task_id = (
                await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [2, 3]})
            ).json()["id"]
            with trio.fail_after(20):
                async for line in lines:
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                        if event.get("id") == task_id:
                            seen.append(event)
                            if event["status"] == "success":
                                break
        statuses = [e["status"] for e in seen]
        assert statuses[-1] == "success"
        assert "running" in statuses
        assert all(e["kind"] == "task" and e["name"] == "dash.add" for e in seen)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_can_submit_and_read() -> None:
    """Any language with HTTP: curl submits a task and long-polls its result."""
    async with run_system() as system:
        submit = await trio.run_process(
            [
                "curl",
                "-sS",
                "-X",
                "POST",
                f"{system.base}/api/v1/tasks",
                "-H",
                "Content-Type: application/json",
                "-d",
                '{"task": "dash.add", "args": [40, 2]}',
                "-w",
                "\n%{http_code}",
            ],
            capture_stdout=True,
        )
        body, code = submit.stdout.decode().rsplit("\n", 1)
        assert code == "201", body
        task_id = json.loads(body)["id"]
        read = await trio.run_process(
            ["curl", "-sS", f"{system.base}/api/v1/tasks/{task_id}?wait=30"], capture_stdout=True
        )
        result = json.loads(read.stdout)
        assert result["status"] == "success" and result["value"] == 42


async def test_token_is_required_when_given(tmp_path) -> None:
    """With --dashboard-token-file every request needs the Bearer token: 401 without or with
    a wrong one (a browser gets the page that asks for it), 200/201 with it."""
    token_file = tmp_path / "token"
    token_file.write_text("  s3cret-token-for-tests \n")
    async with run_system(
        "--dashboard-token-file", str(token_file), token="s3cret-token-for-tests"
    ) as system:
        async with system.http() as http:
            assert (await http.get("/api/v1/stats")).status_code == 200
            assert (await http.get("/metrics")).status_code == 200
            assert (await http.get("/")).status_code == 200
            created = await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [1, 2]})
            assert created.status_code == 201
        import httpx

        async with httpx.AsyncClient(base_url=system.base) as anonymous:
            for method, path in [
                ("GET", "/api/v1/stats"),
                ("GET", "/metrics"),
                ("GET", "/api/v1/events"),
                ("POST", "/api/v1/tasks"),
                ("DELETE", "/api/v1/tasks/x"),
            ]:
                response = await anonymous.request(method, path)
                assert response.status_code == 401, (method, path)
                assert response.json()["error"]["type"] == "Unauthorized"
                assert response.headers["www-authenticate"].startswith("Bearer")
            wrong = await anonymous.get(
                "/api/v1/stats", headers={"Authorization": "Bearer not-the-token"}
            )
            assert wrong.status_code == 401
            page = await anonymous.get("/", headers={"Accept": "text/html"})
            assert page.status_code == 401 and "access token" in page.text


async def test_cross_site_requests_are_refused() -> None:
    """A changing request from another origin gets 403, a foreign Host header (DNS
    rebinding) gets 403, and no response carries CORS headers."""
    async with run_system() as system, system.http() as http:
        foreign = await http.post(
            "/api/v1/tasks",
            json={"task": "dash.add", "args": [1, 2]},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        rebound = await http.get("/api/v1/stats", headers={"Host": "evil.example"})
        assert rebound.status_code == 403
        options = await http.options("/api/v1/tasks", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in options.headers


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastworker", *args],
        cwd=HERE,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_explicit_address_taken_or_unsafe_exits_2() -> None:
    """An explicit --dashboard that is taken, or a non-loopback one without a token, is a
    usage error (exit 2) with a message that says what to do."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = _cli(
            "control-plane",
            "--tasks",
            "dash_tasks",
            "--port",
            "0",
            "--no-discovery",
            "--dashboard",
            f"127.0.0.1:{port}",
        )
    assert run.returncode == 2, run.stderr
    assert f"127.0.0.1:{port}" in run.stderr and "--no-dashboard" in run.stderr
    run = _cli(
        "control-plane",
        "--tasks",
        "dash_tasks",
        "--port",
        "0",
        "--no-discovery",
        "--dashboard",
        "0.0.0.0:0",
    )
    assert run.returncode == 2
    assert "--dashboard-token-file" in run.stderr
    run = _cli(
        "control-plane", "--tasks", "dash_tasks", "--dashboard", "nonsense", "--no-discovery"
    )
    assert run.returncode == 2 and "HOST:PORT" in run.stderr


async def test_ctrl_c_with_streams_open_exits_0() -> None:
    """Ctrl-C drains and exits 0 promptly even while a page's live stream and an events
    stream are open (the HTTP server ends with the control plane)."""
    import signal

    async with run_system() as system, system.http() as http:
        async with (
            http.stream("GET", "/ui/stream") as page,
            http.stream("GET", "/api/v1/events") as events,
        ):
            assert page.status_code == 200 and events.status_code == 200
            system.process.send_signal(signal.SIGINT)
            with trio.fail_after(30):
                code = await system.process.wait()
        assert code == 0, system.output()
