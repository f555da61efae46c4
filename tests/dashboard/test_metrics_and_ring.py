"""``/metrics`` (parsed by prometheus_client's parser), the recent-task ring's bounds and
counters, the JSON form of bytes, and the default-address rule (embedded)."""

from __future__ import annotations

import logging
import socket
import uuid

import httpx
import pytest
import trio
from dash_support import run_system
from prometheus_client.parser import text_string_to_metric_families

import fastworker
from fastworker._dashboard import DashboardConfig, RecentTasks, from_json, to_json
from fastworker._messages import Outcome, Run, Submission, WireError


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_metrics_exposition_parses_and_counts() -> None:
    """/metrics is valid Prometheus text with fastworker_* counters by task name, queue
    gauges by priority and queue, worker slots, histograms and cache figures, and the
    counts match what ran."""
    async with run_system() as system, system.http() as http:
        ids = []
        for i in range(5):
            response = await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [i, 1]})
            ids.append(response.json()["id"])
        failed = (await http.post("/api/v1/tasks", json={"task": "dash.boom"})).json()["id"]
        for task_id in [*ids, failed]:
            await http.get(f"/api/v1/tasks/{task_id}?wait=30")
        await http.post("/api/v1/tasks", json={"task": "dash.add", "countdown": 600})
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)
        add = (("task", "dash.add"),)
        boom = (("task", "dash.boom"),)
        assert samples[("fastworker_tasks_submitted_total", add)] == 6
        assert samples[("fastworker_tasks_succeeded_total", add)] == 5
        assert samples[("fastworker_tasks_started_total", add)] == 5
        assert samples[("fastworker_tasks_failed_total", boom)] == 1
        assert samples[("fastworker_tasks_retried_total", add)] == 0
        assert samples[("fastworker_tasks_redelivered_total", add)] == 0
        assert samples[("fastworker_task_run_seconds_count", add)] == 5
        assert samples[("fastworker_task_run_seconds_bucket", (("le", "+Inf"), *add))] == 5
        assert samples[("fastworker_task_queue_wait_seconds_count", add)] == 5
        assert samples[("fastworker_tasks_scheduled", ())] == 1
        assert (
            samples[("fastworker_queue_depth", (("priority", "high"), ("queue", "default")))] == 0
        )
        assert samples[("fastworker_workers", ())] >= 1
        assert samples[("fastworker_worker_slots", ())] >= 8
        assert samples[("fastworker_result_cache_entries", ())] >= 6
        assert samples[("fastworker_result_cache_bytes", ())] > 0
        assert samples[("fastworker_tasks_suspect", ())] == 0
        assert samples[("fastworker_tasks_quarantined_total", ())] == 0
        assert all(name.startswith("fastworker_") for name, _ in samples)


async def test_journal_commit_latency_is_measured(tmp_path) -> None:
    """With a journal, fastworker_journal_commit_seconds counts the commits."""
    async with run_system("--journal", str(tmp_path / "j.db")) as system, system.http() as http:
        task_id = (
            await http.post("/api/v1/tasks", json={"task": "dash.add", "args": [1, 2]})
        ).json()["id"]
        await http.get(f"/api/v1/tasks/{task_id}?wait=30")
        samples = _samples((await http.get("/metrics")).text)
        assert samples[("fastworker_journal_commit_seconds_count", ())] >= 1


def _sub(i: int, payload: bytes = b"\x92\x90\x80") -> Submission:
    return Submission(f"t{i}", "job", payload)


def test_ring_is_bounded_by_count_and_bytes() -> None:
    """The ring keeps at most max_entries summaries and about max_bytes, oldest out first;
    arguments over keep_arguments are not kept (but their size is remembered)."""
    ring = RecentTasks(max_entries=100, max_bytes=10**9)
    ring.submitted([_sub(i) for i in range(250)], 1.0)
    assert len(ring) == 100
    assert ring.get("t149") is None and ring.get("t150") is not None
    assert ring.evicted == 150

    ring = RecentTasks(max_entries=10**6, max_bytes=100_000, keep_arguments=5_000)
    ring.submitted([_sub(i, b"x" * 4000) for i in range(100)], 1.0)
    assert ring.bytes <= 100_000
    assert 10 < len(ring) < 30
    ring.submitted([_sub(1000, b"y" * 6000)], 1.0)
    summary = ring.get("t1000")
    assert summary is not None and summary.payload is None and summary.too_big == 6000


def test_ring_follows_dispatches_requeues_and_outcomes() -> None:
    """Dispatches, retries and redeliveries move a summary through its statuses and count
    starts, retries and redeliveries; the outcome adds error, traceback and run time;
    filters work; counters keep counting after the summary left the ring."""
    ring = RecentTasks()
    ring.submitted([_sub(1), Submission("o1", "other", b"\x92\x90\x80", countdown=60)], 10.0)
    assert ring.get("o1").status == "scheduled" and ring.get("t1").status == "queued"
    ring.dispatched("w1", [Run("t1", "job", b"", 1)], 10.5)
    assert ring.get("t1").status == "running" and ring.get("t1").worker == "w1"
    ring.requeued([("t1", "job", "retry")], 11.0)
    assert ring.get("t1").status == "retrying"
    ring.dispatched("w2", [Run("t1", "job", b"", 2)], 12.0)
    ring.requeued([("t1", "job", "redelivered")], 13.0)
    assert ring.get("t1").status == "queued"
    ring.dispatched("w3", [Run("t1", "job", b"", 3)], 13.5)
    ring.outcomes(
        [
            Outcome(
                "t1",
                "failure",
                3,
                error=WireError("ValueError", "bad", "Traceback..."),
                started_at=13.5,
                completed_at=14.0,
                worker="w3",
                name="job",
            )
        ],
        14.0,
    )
    summary = ring.get("t1")
    assert summary is not None
    assert summary.status == "failure" and summary.attempts == 3 and summary.worker == "w3"
    assert summary.error is not None and summary.error.traceback == "Traceback..."
    counters = ring.names["job"]
    assert (counters.started, counters.retried, counters.redelivered, counters.failed) == (
        3,
        1,
        1,
        1,
    )
    assert sum(counters.run_time.counts) == 1 and counters.run_time.sum == 0.5
    # Waits from queued: the first attempt (0.5 s) and the redelivered one (0.5 s).
    assert sum(counters.queue_wait.counts) == 2 and counters.queue_wait.sum == 1.0
    assert [s.id for s in ring.recent(status="failure")] == ["t1"]
    assert [s.id for s in ring.recent(name="oth")] == ["o1"]
    seen, changed = ring.changed_since(0)
    assert seen == ring.change_count and [s.id for s in changed] == ["t1", "o1"]
    assert ring.changed_since(seen) == (seen, [])

    ring.requeued([("job@1-1", "tick", "periodic")], 20.0)
    assert ring.get("job@1-1").status == "queued" and ring.names["tick"].submitted == 1

    ring.submitted([_sub(77)], 21.0)
    ring.requeued([("t77", "job", "refused")], 21.5)
    assert ring.get("t77") is None

    small = RecentTasks(max_entries=1)
    small.submitted([_sub(1), _sub(2)], 1.0)
    small.dispatched("w", [Run("t1", "job", b"", 1)], 2.0)
    assert small.get("t1") is None and small.names["job"].started == 1


def test_ring_bounds_the_number_of_metric_names() -> None:
    """Names come from submitters: past the limit they count under "(other)"."""
    ring = RecentTasks()
    ring.submitted([Submission(f"x{i}", f"name{i}", b"\x92\x90\x80") for i in range(1500)], 1.0)
    assert len(ring.names) == 1001
    assert ring.names["(other)"].submitted == 500


def test_bytes_have_a_json_form() -> None:
    """bytes are {"$bytes": base64} both ways, nested anywhere; bad base64 is refused."""
    value = {"a": [b"\x00\xff", {"b": b""}], "n": 1}
    wire = to_json(value)
    assert wire == {"a": [{"$bytes": "AP8="}, {"b": {"$bytes": ""}}], "n": 1}
    assert from_json(wire) == value
    with pytest.raises(ValueError):
        from_json({"$bytes": "not base64!"})


async def test_default_address_taken_starts_without_a_dashboard(caplog) -> None:
    """When the default dashboard address is taken, the control plane starts anyway,
    without a dashboard, and says so."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        caplog.set_level(logging.WARNING, logger="fastworker.dashboard")
        config = DashboardConfig("127.0.0.1", port, explicit=False)
        async with fastworker.open_control_plane(
            dashboard=config, discovery=False, local_concurrency=0
        ) as node:
            assert node.dashboard_url is None
    assert any("starting without the dashboard" in r.getMessage() for r in caplog.records)


async def test_embedded_dashboard_serves_the_page() -> None:
    """open_control_plane(dashboard="127.0.0.1:0") serves the page and the API."""
    async with fastworker.open_control_plane(
        dashboard="127.0.0.1:0", discovery=False, local_concurrency=1
    ) as node:
        assert node.dashboard_url is not None
        async with httpx.AsyncClient(base_url=node.dashboard_url) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "Recent tasks" in page.text
            assert "<script>" in page.text


async def test_a_client_that_never_reads_events_does_not_slow_the_control_plane() -> None:
    """An /api/v1/events client that stops reading (a stuck browser) loses events, while
    thousands of tasks still flow through the control plane to the end, and the next
    client that reads still gets its events."""
    async with fastworker.open_control_plane(
        dashboard="127.0.0.1:0", discovery=False, local_concurrency=8, max_queue=50_000
    ) as node:
        assert node.dashboard_url is not None
        host, port = node.dashboard_url.removeprefix("http://").split(":")
        stuck = trio.socket.socket()
        stuck.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
        await stuck.connect((host, int(port)))
        await stuck.send(f"GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        with stuck:
            await trio.sleep(0.2)  # it is subscribed; from now on it reads nothing
            async with fastworker.open_client(node.url) as client:
                with trio.fail_after(120):
                    for _ in range(5):
                        ids = await client.delay_batch(
                            [("docs.slow.add", (i, 1), {}) for i in range(2000)]
                        )
                        results = await client.gather(ids)
                        assert [r.value for r in results] == [i + 1 for i in range(2000)]
                # The hub is healthy: a client that reads gets the next task's events.
                async with (
                    httpx.AsyncClient(base_url=node.dashboard_url) as http,
                    http.stream("GET", "/api/v1/events") as stream,
                ):
                    lines = stream.aiter_lines()
                    assert (await lines.__anext__()).startswith("retry:")
                    task_id = await client.delay("docs.slow.add", 1, 2)
                    with trio.fail_after(30):
                        async for line in lines:
                            if task_id in line and '"success"' in line:
                                break


@fastworker.task(name="docs.slow.add")
def _slow_add(x: int, y: int) -> int:
    return x + y


@fastworker.task(name="docs.flow.inc")
def _inc(x: int) -> int:
    return x + 1


async def test_a_workflow_is_readable_and_waitable_over_http() -> None:
    """GET /api/v1/tasks/{workflow id}?wait= long-polls a workflow like a task and
    answers its value; while it runs it is not a 404."""
    from fastworker import chain, sig

    async with fastworker.open_control_plane(
        dashboard="127.0.0.1:0", discovery=False, local_concurrency=2
    ) as node:
        assert node.dashboard_url is not None
        async with (
            fastworker.open_client(node.url) as client,
            httpx.AsyncClient(base_url=node.dashboard_url, timeout=30) as http,
        ):
            flow_id = await client.delay(
                chain(sig("docs.flow.inc", 1), sig("docs.flow.inc"), sig("docs.flow.inc"))
            )
            read = await http.get(f"/api/v1/tasks/{flow_id}", params={"wait": 20})
            assert read.status_code == 200, read.text
            assert read.json()["status"] == "success" and read.json()["value"] == 4


async def test_tasks_waiting_for_a_worker_are_shown_and_counted() -> None:
    """A task no connected worker can run is on the page as waiting for a worker and in
    fastworker_tasks_waiting_for_worker by task name."""
    async with fastworker.open_control_plane(
        dashboard="127.0.0.1:0", discovery=False, local_concurrency=0
    ) as node:
        assert node.dashboard_url is not None
        async with httpx.AsyncClient(base_url=node.dashboard_url) as http:
            created = await http.post("/api/v1/tasks", json={"task": "docs.slow.add", "args": [1]})
            assert created.status_code == 201
            samples = _samples((await http.get("/metrics")).text)
            key = ("fastworker_tasks_waiting_for_worker", (("task", "docs.slow.add"),))
            assert samples[key] == 1
            page = (await http.get("/")).text
            assert "waiting for a worker" in page and "docs.slow.add" in page


async def test_the_page_of_a_queued_task_shows_arguments_the_ring_did_not_keep() -> None:
    """A queued task whose arguments were over the ring's keep limit: its page shows
    them, taken from the control plane's answer about the task (the one its JSON came
    from); an unknown task's page is a 404."""
    config = DashboardConfig("127.0.0.1", 0, keep_arguments=16)
    cluster = f"dash-page-{uuid.uuid4().hex[:8]}"
    async with fastworker.open_control_plane(
        ["dash_tasks"], dashboard=config, discovery=False, local_concurrency=0, cluster=cluster
    ) as node:
        assert node.dashboard_url is not None
        async with (
            fastworker.open_client(node.url, cluster=cluster) as client,
            httpx.AsyncClient(base_url=node.dashboard_url) as http,
        ):
            marker = "kept-by-the-control-plane-" + "x" * 64
            task_id = await client.submit("dash.echo", [marker])
            with trio.fail_after(30):
                while True:
                    page = await http.get(f"/tasks/{task_id}")
                    if page.status_code == 200:
                        break
                    await trio.sleep(0.05)
            assert marker in page.text
            assert "not kept" not in page.text
            unknown = await http.get("/tasks/no-such-task")
            assert unknown.status_code == 404
