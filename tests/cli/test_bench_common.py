"""``fastworker._bench_common``: the process helpers every bench mode uses."""

import os
import signal
import subprocess
import sys

import trio
from support import free_tcp_port, wait_until

from fastworker import _bench_common as common


async def test_tree_rss_cpu_and_stop_see_a_real_child_process() -> None:
    """A child process is in this process's tree with a positive RSS, and
    ``stop_process`` ends it and waits for it."""
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL
    )
    try:
        await wait_until(
            lambda: child.pid in common.tree(os.getpid()),
            timeout=30,
            what="the child in this process's tree",
            observe=lambda: common.tree(os.getpid()),
        )
        assert child.pid in common.children(os.getpid())
        assert common.rss_mib([child.pid]) > 0
        assert common.cpu_seconds([os.getpid()]) > 0
    finally:
        with trio.fail_after(30):
            await common.stop_process(child, signal.SIGTERM)
    assert child.returncode is not None
    assert child.pid not in common.children(os.getpid())


async def test_wait_port_returns_once_something_listens() -> None:
    """``wait_port`` keeps waiting while nothing listens on the port, and returns as
    soon as a listener accepts on it."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    closed = free_tcp_port()
    with trio.move_on_after(0.5) as waiting:
        await common.wait_port(closed)
    assert waiting.cancelled_caught, "wait_port returned with nothing listening"
    try:
        with trio.fail_after(10):
            await common.wait_port(port)
    finally:
        await listeners[0].aclose()


def test_system_command_and_env() -> None:
    """The system runs the bench tasks on the port, without discovery, with the flags
    given; its environment drops the user's ``FASTWORKER_*`` settings only."""
    cmd = common.system_command(1234, "--cluster", "c", log_level="critical")
    assert cmd[:4] == [sys.executable, "-m", "fastworker", "run-actor-system"]
    text = " ".join(cmd[4:])
    assert f"--tasks {common.BENCH_TASKS}" in text and "--port 1234" in text
    assert "--cluster c" in text and "--no-discovery" in text and "--log-level critical" in text
    os.environ["FASTWORKER_BENCH_TEST_X"] = "1"
    try:
        env = common.clean_env(EXTRA="2")
    finally:
        del os.environ["FASTWORKER_BENCH_TEST_X"]
    assert "FASTWORKER_BENCH_TEST_X" not in env and env["EXTRA"] == "2"
    assert env.get("PATH") == os.environ.get("PATH")


async def test_stop_process_finishes_when_its_caller_is_cancelled() -> None:
    """A bench cancelled while it cleans up still stops the process it started:
    ``stop_process`` called in an already-cancelled scope signals and reaps the child
    (an unshielded wait would return at once and leave it running)."""
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL
    )
    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            await common.stop_process(child, signal.SIGTERM)
        assert child.returncode is not None
    finally:
        if child.returncode is None:
            child.kill()
            with trio.fail_after(30):
                await child.wait()


def test_percentiles_of_round_trips() -> None:
    """The sequential figures every bench mode prints: the count, the median and the
    99th percentile of the latencies (seconds in, milliseconds out), in any order."""
    from fastworker._bench_client import percentiles

    latencies = [i / 1000 for i in range(200, 0, -1)]  # 1..200 ms, reversed
    figures = percentiles(latencies)
    assert figures["seq_calls"] == 200
    assert abs(figures["seq_p50_ms"] - 100.5) < 1e-9
    assert abs(figures["seq_p99_ms"] - 199.0) < 1e-9
