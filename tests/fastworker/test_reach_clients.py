"""The asyncio and blocking clients against a real control plane on loopback.

The control plane runs in the test's trio loop; the asyncio app (``asyncio.run``) and
the blocking callers run in worker threads, as they would in a web server.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sample_tasks
import trio
from sample_tasks import add, async_add, boom

import fastworker
from fastworker import ControlPlaneNode

TASKS = ["sample_tasks"]


@asynccontextmanager
async def control_plane(**options: Any) -> AsyncIterator[ControlPlaneNode]:
    """An embedded control plane on a free loopback port, running tasks itself."""
    async with fastworker.open_control_plane(
        tasks=TASKS, port=0, discovery=False, local_concurrency=8, **options
    ) as cp:
        yield cp


def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking code in a worker thread (bounded by the caller's trio timeout)."""
    return trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)


# -- asyncio -------------------------------------------------------------------------------


async def test_open_client_works_under_asyncio() -> None:
    """Under asyncio.run, open_client gives a Client whose methods are awaited in the
    asyncio loop: call (by function and name), delay, result, gather, get_result,
    status, stats, cancel, events, and a failure raises TaskFailed."""

    async def app(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with fastworker.open_client(url) as client:
            assert isinstance(client, fastworker.Client)
            out["call"] = await client.call(add, 1, 2)
            out["async"] = await client.call(async_add, 2, 3)
            out["by_name"] = await client.call("add", 3, 4)
            ids = [await client.delay(add, i, i) for i in range(5)]
            out["gather"] = [r.value for r in await client.gather(ids)]
            out["result"] = (await client.result(ids[0])).value
            out["get_result"] = (await client.get_result(ids[1])).value  # type: ignore[union-attr]
            out["status"] = await client.status(ids[2])
            out["stats"] = (await client.stats()).completed
            out["cancel_unknown"] = await client.cancel("no-such-id")
            with pytest.raises(fastworker.TaskFailed, match="kaput"):
                await client.call(boom, "kaput")
            seen = []

            async def keep_submitting() -> None:  # until the stream (subscribing) sees one
                while True:
                    await client.delay(add, 9, 9)
                    await asyncio.sleep(0.1)

            feeder = asyncio.ensure_future(keep_submitting())
            async for event in client.events():
                seen.append(event)
                if any(e.kind == "task" and e.status == "success" for e in seen):
                    break
            feeder.cancel()
            out["events"] = len(seen)
        return out

    async with control_plane() as cp:
        with trio.fail_after(60):
            out = await in_thread(asyncio.run, app(cp.url))
    assert out["call"] == 3 and out["async"] == 5 and out["by_name"] == 7
    assert out["gather"] == [0, 2, 4, 6, 8] and out["result"] == 0 and out["get_result"] == 2
    assert out["status"] is fastworker.TaskStatus.SUCCESS
    assert out["stats"] >= 8 and out["cancel_unknown"] is False and out["events"] >= 1


async def test_an_asyncio_cancelled_call_cancels_its_trio_side() -> None:
    """asyncio.wait_for timing out a call cancels the trio call behind it: the client
    holds no waiter afterwards, and keeps serving."""

    async def app(url: str) -> tuple[Any, Any]:
        async with fastworker.open_client(url) as client:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.call("sleepy", 30.0, "a"), 0.5)
            for _ in range(200):  # the trio side ends promptly (bounded poll)
                stats = client.statistics()
                if stats.waiters == 0 and stats.submitting == 0:
                    break
                await asyncio.sleep(0.02)
            return stats, await client.call(add, 1, 1)

    async with control_plane() as cp:
        with trio.fail_after(60):
            stats, value = await in_thread(asyncio.run, app(cp.url))
    assert (stats.waiters, stats.waited_ids, stats.submitting) == (0, 0, 0)
    assert value == 2


async def test_many_asyncio_requests_share_one_client_concurrently() -> None:
    """200 concurrent asyncio calls through one client all get their own answers."""

    async def app(url: str) -> list[int]:
        async with fastworker.open_client(url) as client:
            return list(await asyncio.gather(*(client.call(add, i, 1) for i in range(200))))

    async with control_plane() as cp:
        with trio.fail_after(60):
            values = await in_thread(asyncio.run, app(cp.url))
    assert values == [i + 1 for i in range(200)]


# -- blocking ------------------------------------------------------------------------------


async def test_the_blocking_client_in_sync_code() -> None:
    """connect() then call/delay/result/gather/get_result/status/cancel/stats/submit/
    delay_batch, as a `with` block; after close, calls raise ConnectionFailed."""

    def app(url: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with fastworker.connect(url) as client:
            out["call"] = client.call(add, 1, 2, timeout=30.0)
            out["async"] = client.call(async_add, 2, 2)
            task_id = client.delay(add, 5, 5, priority="high")
            out["result"] = client.result(task_id, timeout=30).value
            out["get_result"] = client.get_result(task_id).value  # type: ignore[union-attr]
            out["status"] = client.status(task_id)
            ids = client.delay_batch([(add, (1, 1)), ("add", (2, 2), {})])
            ids.append(client.submit(add, (3, 3)))
            out["gather"] = [r.value for r in client.gather(ids, timeout=30)]
            out["cancel"] = client.cancel("nope")
            out["stats"] = client.stats().completed
            with pytest.raises(fastworker.TaskFailed):
                client.call(boom, "x")
        with pytest.raises(fastworker.ConnectionFailed):
            client.call(add, 1, 1)
        return out

    async with control_plane() as cp:
        with trio.fail_after(60):
            out = await in_thread(app, cp.url)
    assert out["call"] == 3 and out["async"] == 4 and out["result"] == 10
    assert out["get_result"] == 10 and out["status"] is fastworker.TaskStatus.SUCCESS
    assert out["gather"] == [2, 4, 6] and out["cancel"] is False and out["stats"] >= 6


async def test_a_wait_past_its_timeout_raises_result_timeout_and_the_task_goes_on() -> None:
    """call(timeout=) and result(timeout=) raise ResultTimeout (a TimeoutError too)
    naming the task; the task finishes anyway and result() gets it afterwards."""

    def app(url: str) -> tuple[BaseException, Any]:
        client = fastworker.connect(url)
        try:
            with pytest.raises(fastworker.ResultTimeout) as caught:
                client.call("sleepy", 0.8, "t", timeout=0.1)
            assert isinstance(caught.value, TimeoutError)
            task_id = caught.value.task_id
            assert task_id is not None
            with pytest.raises(TimeoutError):
                client.result(task_id, timeout=0.05)
            return caught.value, client.result(task_id, timeout=30).value
        finally:
            client.close()

    async with control_plane() as cp:
        with trio.fail_after(60):
            error, value = await in_thread(app, cp.url)
    assert value == "t" and "sleepy" in str(error)


async def test_one_blocking_client_is_shared_by_many_threads() -> None:
    """32 threads x 25 calls through one BlockingClient: every answer is right."""
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def app(url: str) -> None:
        client = fastworker.connect(url)

        def worker(k: int) -> None:
            try:
                results.append([client.call(add, k, i) - k for i in range(25)])
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        client.close()

    async with control_plane() as cp:
        with trio.fail_after(120):
            await in_thread(app, cp.url)
    assert not errors
    assert len(results) == 32 and all(r == list(range(25)) for r in results)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
async def test_a_forked_child_reconnects_on_first_use() -> None:
    """A client made before fork (gunicorn --preload) works in the child (a fresh
    connection) and still in the parent."""

    def app(url: str) -> tuple[int, int, int]:
        client = fastworker.connect(url)
        assert client.call(add, 1, 1) == 2
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report the answer through the pipe, then leave at once
            code = 1
            try:
                os.write(write, str(client.call(add, 20, 22, timeout=30)).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        answer = int(os.read(read, 100) or b"-1")
        os.close(read)
        value = client.call(add, 2, 3)
        client.close()
        return os.waitstatus_to_exitcode(status), answer, value

    async with control_plane() as cp:
        with trio.fail_after(60):
            code, answer, value = await in_thread(app, cp.url)
    assert (code, answer, value) == (0, 42, 5)


async def test_a_lazy_blocking_client_connects_on_first_use() -> None:
    """connect(lazy=True) needs no control plane yet: it connects at the first call."""

    def app(url: str) -> tuple[bool, int]:
        client = fastworker.connect(url, lazy=True)
        before = client.connected
        value = client.call(add, 2, 2)
        client.close()
        return before, value

    async with control_plane() as cp:
        with trio.fail_after(60):
            before, value = await in_thread(app, cp.url)
    assert before is False and value == 4


async def test_typed_handles_name_the_task_and_refuse_plain_functions() -> None:
    """The @task function stands for its name everywhere; a plain function is refused
    with a message that says what to pass."""

    def plain(x: int) -> int:
        return x

    async with control_plane() as cp, fastworker.open_client(cp.url) as client:
        with trio.fail_after(30):
            task_id = await client.delay(sample_tasks.sleepy, 0.0, "n")
            assert (await client.result(task_id)).name == "sleepy"
            with pytest.raises(fastworker.ConfigurationError, match="@task"):
                await client.delay(plain, 1)  # type: ignore[call-overload]


def test_a_call_cancelled_in_the_trio_thread_cancels_the_asyncio_side() -> None:
    """Cancellation crosses the other way too: when the trio thread stops under a call,
    the awaiting asyncio task is cancelled (and a blocking caller gets ConnectionFailed)."""
    from fastworker._portal import Portal

    portal = Portal()

    running = threading.Event()

    async def call() -> None:
        running.set()
        await trio.sleep_forever()

    async def app() -> str:
        waiting = asyncio.ensure_future(portal.run_async(call))
        # The stop must come while the call runs in the trio thread: wait for that.
        assert await asyncio.to_thread(running.wait, 30), "the call never started"
        threading.Thread(target=portal.stop).start()
        try:
            await asyncio.wait_for(waiting, 30)
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert asyncio.run(app()) == "cancelled"
    with pytest.raises(fastworker.ConnectionFailed):
        portal.run(trio.sleep_forever)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_connection_failed_from_the_parents_trio_thread() -> None:
    """A call through a trio thread made before fork fails at once in the child with
    ConnectionFailed (the thread is the parent's); it does not wait forever."""
    from fastworker._portal import Portal

    portal = Portal()
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit 0 on ConnectionFailed; SIGALRM ends a hang
            code = 1
            try:
                import signal

                signal.alarm(20)
                try:
                    portal.run(trio.sleep, 0)
                except fastworker.ConnectionFailed:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert portal.run(trio.sleep, 0) is None  # the parent's thread still serves it
    finally:
        portal.stop()


def test_the_portal_passes_keyword_arguments_through_even_one_named_fn() -> None:
    """Portal.run and run_async hand keyword arguments to the call (a task's own
    keyword argument may be called ``fn``), from a thread and from asyncio."""
    from fastworker._portal import Portal

    async def echo(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        await trio.lowlevel.checkpoint()
        return args, kwargs

    portal = Portal()
    try:
        assert portal.run(echo, 1, fn=2, b=3) == ((1,), {"fn": 2, "b": 3})

        async def app() -> Any:
            return await portal.run_async(echo, 4, fn=5)

        assert asyncio.run(app()) == ((4,), {"fn": 5})
    finally:
        portal.stop()
