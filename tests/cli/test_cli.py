"""End-to-end tests of the ``fastworker`` command line, with real processes on loopback.

Every process a test starts is ended by PID in a ``finally`` (with its subworker
children, found through ``/proc/<pid>/task/*/children``); servers listen on free
127.0.0.1 ports with ``--no-discovery`` unless the test is about discovery, and
readiness is polled, never slept for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from support import free_tcp_port, free_udp_port, wait_until
from support.process import children, cmdline, kill_if_ours, kill_tree

import fastworker
from fastworker import ClusterStats, ConnectionFailed, TaskStatus

HERE = Path(__file__).resolve().parent
TASKS = "cli_tasks"
CRASH_ENV = "FASTWORKER_TEST_CRASH_SUBWORKER"


# -- helpers --------------------------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: ours without FASTWORKER_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTWORKER_")}
    env["TZ"] = "UTC"
    env.update(extra)
    return env


@attrs.define
class Run:
    """A finished command: exit code and output."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.stdout)


async def fastworker_cli(*args: str, env: dict[str, str] | None = None, limit: float = 30.0) -> Run:
    """Run ``python -m fastworker ARGS`` here and wait for it, at most ``limit`` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "fastworker", *args],
            cwd=HERE,
            env=env if env is not None else base_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        try:
            with trio.fail_after(limit):
                code = await process.wait()
        finally:
            if process.returncode is None:
                kill_tree(process.pid)
                await process.wait()
        out.seek(0)
        err.seek(0)
        return Run(code, out.read().decode(), err.read().decode())


async def gather(*thunks: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the thunks concurrently; their results in order."""
    results: list[Any] = [None] * len(thunks)

    async def one(index: int, thunk: Callable[[], Awaitable[Any]]) -> None:
        results[index] = await thunk()

    async with trio.open_nursery() as nursery:
        for index, thunk in enumerate(thunks):
            nursery.start_soon(one, index, thunk)
    return results


@attrs.define
class Server:
    """A ``fastworker run-actor-system`` process under test."""

    process: trio.Process
    url: str
    log: Any
    secret: bytes | None = None
    seen_children: set[int] = attrs.field(factory=set)

    @property
    def pid(self) -> int:
        """The control plane process's pid."""
        return self.process.pid

    def subworker_pids(self) -> set[int]:
        """The current subworker children (also remembered for the final clean-up)."""
        pids = set(children(self.pid))
        self.seen_children |= pids
        return pids

    def output(self) -> str:
        """Everything the process (and its subworkers) printed so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    @asynccontextmanager
    async def client(self, connect_timeout: float = 10.0) -> AsyncIterator[fastworker.Client]:
        """A Python client connected to this server."""
        async with fastworker.open_client(
            self.url, secret=self.secret, connect_timeout=connect_timeout
        ) as client:
            yield client

    async def wait_ready(self, subworkers: int) -> None:
        """Poll until the control plane answers and ``subworkers`` subworkers registered."""
        while True:
            self._check_alive()
            try:
                async with self.client(connect_timeout=1.0) as client:
                    await wait_until(
                        partial(self._registered, client, subworkers),
                        timeout=30,  # within the caller's 40 s: say what was missing
                        what=f"{subworkers} subworkers registered",
                    )
                    self.subworker_pids()
                    return
            except* ConnectionFailed:  # open_client wraps it in an ExceptionGroup today
                pass
            await trio.sleep(0.1)  # not listening yet: try again (the caller owns the timeout)

    async def _registered(self, client: fastworker.Client, subworkers: int) -> bool:
        self._check_alive()
        stats = await client.stats()
        return sum(w.id != "local" for w in stats.workers) >= subworkers

    def _check_alive(self) -> None:
        if self.process.returncode is not None:
            pytest.fail(
                f"the server exited with {self.process.returncode}:\n{self.output()}",
                pytrace=False,
            )

    async def interrupt(self, within: float = 10.0) -> int:
        """Send SIGINT (Ctrl-C) and wait for the exit code, at most ``within`` seconds."""
        self.subworker_pids()
        self.process.send_signal(signal.SIGINT)
        with trio.fail_after(within):
            return await self.process.wait()

    async def kill(self) -> None:
        """End the process and every subworker it ever had, by PID."""
        if self.process.returncode is None:
            self.subworker_pids()
            kill_tree(self.pid)
            await self.process.wait()
        for pid in self.seen_children:
            kill_if_ours(pid, self.url)


@asynccontextmanager
async def run_actor_system(
    *extra: str,
    subworkers: int = 2,
    env: dict[str, str] | None = None,
    secret: bytes | None = None,
    wait: bool = True,
    discovery_port: int | None = None,
) -> AsyncIterator[Server]:
    """``fastworker run-actor-system --tasks cli_tasks`` on a free port, ready when yielded."""
    port = free_tcp_port()
    cmd = [
        sys.executable,
        "-m",
        "fastworker",
        "run-actor-system",
        "--port",
        str(port),
        "--subworkers",
        str(subworkers),
        "--log-level",
        "warning",
        *(["--no-discovery"] if discovery_port is None else []),
        *(["--discovery-port", str(discovery_port)] if discovery_port is not None else []),
        *extra,
    ]
    if "--tasks" not in extra and "--task-modules" not in extra:
        cmd += ["--tasks", TASKS]
    with tempfile.TemporaryFile() as log:
        process = await trio.lowlevel.open_process(
            cmd, cwd=HERE, env=env if env is not None else base_env(), stdout=log, stderr=log
        )
        server = Server(process, f"ws://127.0.0.1:{port}", log, secret)
        try:
            if wait:
                with trio.fail_after(40):
                    await server.wait_ready(subworkers)
            yield server
        finally:
            with trio.CancelScope(shield=True):
                await server.kill()


def gone(pid: int, url: str) -> bool:
    """True once ``pid`` is no longer one of our live subworkers."""
    return url not in cmdline(pid)


# -- 1, 6, 7, 9: a whole system driven by the CLI and the Python client ------------------------


async def test_run_actor_system_runs_cli_and_client_tasks() -> None:
    """`run-actor-system --task-modules M --subworkers 2` serves the CLI and the Python client.

    Proves: `submit --wait` prints the value (exit 0); `submit` prints an id that `status`
    and `result` (plain and --json) report on; `submit --json --wait` parses; a failing
    task exits 1 with a one-line reason; FASTWORKER_URL stands in for --url;
    `--task-modules` is accepted for `--tasks`; `top --once` (and --json) shows the
    subworkers; and `open_client(url).call` runs tasks in the subworker processes.
    """
    with trio.fail_after(60):
        async with run_actor_system("--task-modules", TASKS, subworkers=2) as server:
            url = server.url
            pids = server.subworker_pids()
            assert len(pids) == 2

            async def python_client() -> tuple[int, int, list[int]]:
                async with server.client() as client:
                    value = await client.call("add", 1, 2)
                    kw = await client.call("nap", 0.0, value=7)
                    ran_in = [await client.call("whoami") for _ in range(4)]
                    return value, kw, ran_in

            cli = fastworker_cli
            (
                waited,
                submitted,
                as_json,
                via_env,
                failed,
                kwargs,
                top,
                top_json,
                py,
            ) = await gather(
                partial(cli, "submit", "add", "1", "2", "--wait", "--url", url),
                partial(cli, "submit", "add", "1", "2", "--url", url),
                partial(cli, "submit", "add", "[1]", "[2]", "--wait", "--json", "--url", url),
                partial(cli, "submit", "add", "2", "3", "--wait", env=base_env(FASTWORKER_URL=url)),
                partial(cli, "submit", "boom", "kaput", "--wait", "--url", url),
                partial(
                    cli, "submit", "nap", "0", "--kwargs", '{"value": 9}', "--wait", "--url", url
                ),
                partial(cli, "top", "--once", "--url", url),
                partial(cli, "top", "--json", "--url", url),
                python_client,
            )

            assert (waited.code, waited.stdout) == (0, "3\n"), waited
            assert submitted.code == 0, submitted
            task_id = submitted.stdout.strip()
            assert task_id and len(submitted.stdout.splitlines()) == 1, submitted

            assert as_json.code == 0, as_json
            doc = as_json.json()
            assert doc["status"] == "success" and doc["value"] == [1, 2], doc

            assert (via_env.code, via_env.stdout) == (0, "5\n"), via_env
            assert (kwargs.code, kwargs.stdout) == (0, "9\n"), kwargs

            assert failed.code == 1, failed
            assert "Traceback" not in failed.stderr, failed
            assert "ValueError: kaput" in failed.stderr, failed
            assert len(failed.stderr.strip().splitlines()) == 1, failed

            assert top.code == 0, top
            assert url in top.stdout and "workers" in top.stdout, top
            assert top_json.code == 0, top_json
            stats = top_json.json()
            remote = [w for w in stats["workers"] if w["id"] != "local"]
            assert len(remote) == 2 and all(w["slots"] == 8 for w in remote), stats
            assert stats["draining"] is False
            assert {"critical", "high", "normal", "low"} <= set(stats["queued"]), stats

            value, kw, ran_in = py
            assert (value, kw) == (3, 7)
            assert set(ran_in) <= pids, (ran_in, pids)  # ran in subworkers, not the CP

            status, status_json, result, result_json, missing = await gather(
                partial(cli, "status", task_id, "--url", url),
                partial(cli, "status", task_id, "--json", "--url", url),
                partial(cli, "result", task_id, "--url", url),
                partial(cli, "result", task_id, "--json", "--url", url),
                partial(cli, "status", "no-such-task", "--json", "--url", url),
            )
            assert (status.code, status.stdout) == (0, "success\n"), status
            assert status_json.json() == {"task_id": task_id, "status": "success"}, status_json
            assert (result.code, result.stdout) == (0, "3\n"), result
            doc = result_json.json()
            assert doc["task_id"] == task_id and doc["status"] == "success", doc
            assert doc["value"] == 3 and doc["name"] == "add" and doc["attempts"] == 1, doc
            assert missing.code == 1 and missing.json()["status"] is None, missing


# -- 2: a killed subworker is restarted and loses nothing ------------------------------------


async def completed(client: fastworker.Client, count: int) -> bool:
    """Whether the control plane counts at least ``count`` completed tasks."""
    return (await client.stats()).completed >= count


async def running(client: fastworker.Client, task_id: str) -> bool:
    """Whether the task is running now."""
    return await client.status(task_id) is TaskStatus.RUNNING


async def test_sigkill_of_a_subworker_restarts_it_and_loses_no_task() -> None:
    """SIGKILL of one subworker mid-run: a new child process replaces it, every task succeeds.

    200 tasks sleeping 50 ms go in as one `delay_batch`; once some have completed one
    subworker is SIGKILLed. All 200 results are then correct, some needed a second
    attempt (they were in flight on the killed process), and the supervisor started a
    new subworker process that registers again.
    """
    with trio.fail_after(60):
        async with run_actor_system("--concurrency", "4", subworkers=2) as server:
            before = server.subworker_pids()
            assert len(before) == 2
            victim = min(before)
            async with server.client() as client:
                workers = {w.id for w in (await client.stats()).workers if w.id != "local"}
                ids = await client.delay_batch([("nap", (0.05,), {"value": i}) for i in range(200)])
                await wait_until(  # some done, most still to run
                    lambda: completed(client, 40), timeout=60, what="40 tasks completed"
                )
                os.kill(victim, signal.SIGKILL)

                results = await client.gather(ids)
                assert [r.status for r in results] == [TaskStatus.SUCCESS] * 200
                assert [r.value for r in results] == list(range(200))
                assert any(r.attempts > 1 for r in results), "nothing was in flight on the victim"

                async def replaced() -> tuple[set[int], ClusterStats] | None:
                    now = server.subworker_pids()
                    stats = await client.stats()
                    remote = {w.id for w in stats.workers if w.id != "local"}
                    if len(now) == 2 and now - before and len(remote) == 2 and remote - workers:
                        return now, stats
                    return None

                now, stats = await wait_until(
                    replaced,
                    timeout=60,
                    what="a new subworker pid, registered with the control plane",
                    observe=lambda: server.subworker_pids(),
                )
                assert victim not in now and (before - {victim}) <= now
                assert stats.redelivered >= 1, stats
                assert await client.call("add", 20, 22) == 42
            # Killed after it joined: a run-time crash, always restarted (never a crash loop).
            assert "was killed by SIGKILL while running tasks; restarting" in server.output(), (
                server.output()
            )


# -- 3: Ctrl-C drains ------------------------------------------------------------------------


async def test_sigint_lets_a_running_task_finish_and_exits_zero() -> None:
    """SIGINT while a 2 s task runs: the waiting client gets its success, the system exits 0.

    The exit comes after the task's result (draining, not dropping) and within 10 s, and
    the subworker processes are gone too.
    """
    with trio.fail_after(60):
        async with run_actor_system(subworkers=1) as server:
            pids = server.subworker_pids()
            async with server.client() as client:
                task_id = await client.delay("nap", 2.0, value=42)
                await wait_until(
                    lambda: running(client, task_id), timeout=60, what="the nap running"
                )
                got: list[Any] = []

                async def wait_result() -> None:
                    got.append(await client.result(task_id))
                    got.append(time.monotonic())

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(wait_result)
                    # Whether the watch arrives before or after the signal, draining must
                    # answer it: the task still runs for well over a second.
                    await trio.lowlevel.checkpoint()
                    signalled = time.monotonic()
                    code = await server.interrupt(within=10.0)
                    exited = time.monotonic()
                    nursery.cancel_scope.deadline = trio.current_time() + 5
                assert got, "the result never arrived"
                result, delivered = got
                assert result.status is TaskStatus.SUCCESS and result.value == 42, result
                assert code == 0, server.output()
                assert delivered <= exited + 1.0
                assert exited - signalled < 10.0
            assert all(gone(pid, server.url) for pid in pids), server.output()
            assert "Traceback" not in server.output(), server.output()


async def test_second_sigint_stops_at_once_and_leaves_no_subworker() -> None:
    """A second SIGINT while draining a long task stops at once (exit 130), children included.

    The subworkers run in their own sessions, so they only go if run-actor-system ends
    them: after the forced stop none of them may be left running.
    """
    with trio.fail_after(60):
        async with run_actor_system(subworkers=2) as server:
            pids = server.subworker_pids()
            async with server.client() as client:
                task_id = await client.delay("nap", 60.0)
                await wait_until(
                    lambda: running(client, task_id), timeout=60, what="the nap running"
                )
            server.process.send_signal(signal.SIGINT)
            await wait_until(  # the first signal is being handled: draining
                lambda: "draining" in server.output(),
                timeout=60,
                what="'draining' in the server's output",
                observe=lambda: server.output()[-2000:],
            )
            signalled = time.monotonic()
            code = await server.interrupt(within=10.0)
            assert code == 130, server.output()
            assert time.monotonic() - signalled < 10.0
            assert all(gone(pid, server.url) for pid in pids), server.output()


# -- 4: usage errors -------------------------------------------------------------------------


CLOSED_URL = "ws://127.0.0.1:9"  # never dialled: these commands fail before connecting


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["submit", "add", "1", "--no-such-flag"], "--no-such-flag"),
        (["run-actor-system", "--no-discovery"], "--tasks"),
        (["submit", "add", "--kwargs", "{not json", "--url", CLOSED_URL], "--kwargs"),
        (["submit", "add", "--kwargs", "[1, 2]", "--url", CLOSED_URL], "--kwargs"),
        (
            [
                "submit",
                "add",
                "--secret-file",
                "/nonexistent/fastworker-secret",
                "--url",
                CLOSED_URL,
            ],
            "/nonexistent/fastworker-secret",
        ),
        (
            [
                "run-actor-system",
                "--tasks",
                "no_such_tasks_module",
                "--no-discovery",
                "--port",
                "0",
                "--subworkers",
                "0",
            ],
            "no_such_tasks_module",
        ),
        (["tasks", "--tasks", "cli_broken_tasks"], "cli_broken_tasks"),
        (["submit", "add", "--priority", "urgent", "--url", CLOSED_URL], "urgent"),
    ],
    ids=[
        "unknown-flag",
        "missing-tasks",
        "bad-kwargs-json",
        "kwargs-not-object",
        "missing-secret-file",
        "unimportable-module",
        "module-raises",
        "bad-priority",
    ],
)
async def test_usage_error_exits_2_with_one_line(args: list[str], needle: str) -> None:
    """A usage error exits 2 with one readable line on stderr naming the culprit, no traceback."""
    run = await fastworker_cli(*args)
    assert run.code == 2, run
    assert "Traceback" not in run.stderr, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run
    assert lines[0].startswith("fastworker"), run
    assert needle in lines[0], run


# -- 5: unreachable cluster ------------------------------------------------------------------


async def test_unreachable_cluster_exits_3() -> None:
    """No control plane: `submit --url` to a closed port and `status` with no beacon exit 3."""
    closed = f"ws://127.0.0.1:{free_tcp_port()}"
    port = str(free_udp_port())
    with trio.fail_after(30):
        by_url, by_beacon = await gather(
            partial(
                fastworker_cli,
                "submit",
                "add",
                "1",
                "2",
                "--url",
                closed,
                "--connect-timeout",
                "1",
            ),
            partial(
                fastworker_cli, "status", "x", "--discovery-port", port, "--connect-timeout", "1"
            ),
        )
    for run in (by_url, by_beacon):
        assert run.code == 3, run
        assert "Traceback" not in run.stderr, run
        assert len(run.stderr.strip().splitlines()) == 1, run
        assert "cannot reach" in run.stderr, run
    assert closed in by_url.stderr, by_url
    assert "beacon" in by_beacon.stderr, by_beacon


# -- discovery: the default when no --url is given ---------------------------------------------


async def test_client_commands_find_the_control_plane_by_beacon() -> None:
    """Without --url, `submit` finds the control plane by its UDP beacon (private port)."""
    port = free_udp_port()
    with trio.fail_after(60):
        async with run_actor_system(subworkers=0, discovery_port=port) as server:
            run = await fastworker_cli(
                "submit",
                "add",
                "4",
                "5",
                "--wait",
                "--discovery-port",
                str(port),
                "--connect-timeout",
                "10",
            )
            assert (run.code, run.stdout) == (0, "9\n"), (run, server.output())


# -- 8: tasks ----------------------------------------------------------------------------------


async def test_tasks_lists_names_and_schedules() -> None:
    """`tasks --tasks M` lists every task with its schedule and next fire time (and --json).

    The periodic task fires about an interval from now, the cron task at 09:00 UTC on a
    weekday; FASTWORKER_TASKS stands in for --tasks.
    """
    with trio.fail_after(30):
        table, as_json = await gather(
            partial(fastworker_cli, "tasks", "--tasks", TASKS),
            partial(fastworker_cli, "tasks", "--json", env=base_env(FASTWORKER_TASKS=TASKS)),
        )
    assert table.code == 0, table
    for text in (
        "add",
        "boom",
        "nap",
        "hourly",
        "weekday_morning",
        "every 3600s",
        "cron 0 9 * * 1-5",
    ):
        assert text in table.stdout, (text, table)

    assert as_json.code == 0, as_json
    rows = {row["name"]: row for row in as_json.json()}
    assert {"add", "boom", "nap", "whoami", "hourly", "weekday_morning"} <= set(rows)
    assert rows["add"]["schedule"] is None and rows["add"]["next_fire"] is None
    assert rows["nap"]["kind"] == "async" and rows["add"]["kind"] == "sync"
    now = datetime.now(UTC)
    hourly = rows["hourly"]
    assert hourly["schedule"] == "every 3600s"
    delta = (datetime.fromisoformat(hourly["next_fire"]) - now).total_seconds()
    assert 3500 < delta <= 3600, hourly
    cron = rows["weekday_morning"]
    assert cron["schedule"] == "cron 0 9 * * 1-5"
    fire = datetime.fromisoformat(cron["next_fire"])
    assert fire > now and (fire - now).days <= 3, cron
    assert (fire.hour, fire.minute, fire.second) == (9, 0, 0) and fire.weekday() < 5, cron


# -- 10: bench -------------------------------------------------------------------------------


async def test_bench_smoke(tmp_path: Path) -> None:
    """`bench --n 200 --seconds 0.3 --subworkers 0,1` exits 0 with a two-row table (and --json).

    Correctness only: bench checks every result itself; no speed is asserted. The --json
    run has FASTWORKER_SECRET_FILE set, as a user's shell might: the system bench starts
    must not pick it up (its own client has no secret).
    """
    secret = tmp_path / "secret"
    secret.write_text("a secret for some other cluster\n")
    args = ("bench", "--n", "200", "--seconds", "0.3", "--subworkers", "0,1")
    with trio.fail_after(80):
        table, as_json = await gather(
            partial(fastworker_cli, *args, limit=75),
            partial(
                fastworker_cli,
                *args,
                "--json",
                env=base_env(FASTWORKER_SECRET_FILE=str(secret)),
                limit=75,
            ),
        )
    assert table.code == 0, table
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[0] == "subworkers", table
    assert set(lines[1]) == {"-"}, table
    rows = lines[2:]
    assert [row.split()[0] for row in rows] == ["0", "1"], table

    assert as_json.code == 0, as_json
    doc = as_json.json()
    assert [row["subworkers"] for row in doc] == [0, 1], doc
    for row in doc:
        assert row["batched"] > 0 and row["pipelined"] > 0 and row["seq_calls"] >= 20, row
    assert len(doc[1]["subworker_peak_rss_mib"]) == 1, doc


# -- 11: secrets -----------------------------------------------------------------------------


async def test_cluster_secret(tmp_path: Path) -> None:
    """With `--secret-file`, clients with the same secret work; a wrong or no secret exits 3.

    The refusal says it is about the secret, on one line.
    """
    good = tmp_path / "secret"
    good.write_text("correct horse battery staple\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not the secret\n")
    with trio.fail_after(60):
        async with run_actor_system(
            "--secret-file", str(good), subworkers=1, secret=good.read_bytes().strip()
        ) as server:
            url = server.url
            ok, bad, none, via_env = await gather(
                partial(
                    fastworker_cli,
                    "submit",
                    "add",
                    "1",
                    "2",
                    "--wait",
                    "--url",
                    url,
                    "--secret-file",
                    str(good),
                ),
                partial(
                    fastworker_cli,
                    "submit",
                    "add",
                    "1",
                    "2",
                    "--wait",
                    "--url",
                    url,
                    "--secret-file",
                    str(wrong),
                    "--connect-timeout",
                    "3",
                ),
                partial(
                    fastworker_cli,
                    "submit",
                    "add",
                    "1",
                    "2",
                    "--wait",
                    "--url",
                    url,
                    "--connect-timeout",
                    "3",
                ),
                partial(
                    fastworker_cli,
                    "submit",
                    "add",
                    "3",
                    "4",
                    "--wait",
                    env=base_env(FASTWORKER_URL=url, FASTWORKER_SECRET_FILE=str(good)),
                ),
            )
            assert (ok.code, ok.stdout) == (0, "3\n"), ok
            assert (via_env.code, via_env.stdout) == (0, "7\n"), via_env
            for run in (bad, none):
                assert run.code == 3, run
                assert "Traceback" not in run.stderr, run
                assert len(run.stderr.strip().splitlines()) == 1, run
                assert "secret" in run.stderr, run
            async with server.client() as client:  # the subworker joined with the secret too
                assert await client.call("whoami") in server.subworker_pids()


# -- 12: crash loop --------------------------------------------------------------------------


@pytest.mark.slow
async def test_crash_loop_stops_the_system() -> None:
    """A subworker that dies on every start stops run-actor-system with exit 1, naming the loop.

    The tasks module exits at import in subworker processes only (an environment switch),
    so the control plane starts fine and the supervisor restarts the subworker with
    backoff (0.5 s doubling) until its limit (5 restarts in 60 s): 15.5 s of backoff plus
    six process starts, about 20 s in all, hence ``slow``.
    """
    with trio.fail_after(60):
        async with run_actor_system(
            subworkers=1, env=base_env(**{CRASH_ENV: "1"}), wait=False
        ) as server:
            started = time.monotonic()
            code = await server.process.wait()
            took = time.monotonic() - started
            out = server.output()
            assert code == 1, out
            assert "subworker 0 failed to start 6 times" in out, out
            assert "stopping the system" in out, out
            assert "Traceback" not in out, out
            assert took < 45, took
