"""Real loopback websockets and UDP discovery: embedding, beacons, failures to connect.

These run on the real clock (no autojump): every wait is bounded by trio.fail_after.
"""

from __future__ import annotations

import uuid

import pytest
import sample_tasks
import trio
from support import free_tcp_port, free_udp_port

import fastworker
from fastworker import TaskStatus
from fastworker.testing import open_cluster

TASKS = ["sample_tasks"]


async def test_embedded_control_plane_subworker_and_client_over_websockets() -> None:
    """open_control_plane + open_subworker + open_client on ws://127.0.0.1 run tasks."""
    with trio.fail_after(20):
        async with fastworker.open_control_plane(
            tasks=TASKS, port=0, discovery=False, local_concurrency=0
        ) as cp:
            assert cp.url.startswith("ws://127.0.0.1:")
            assert not cp.url.endswith(":0")
            async with (
                fastworker.open_subworker(url=cp.url, tasks=TASKS, concurrency=2) as sw,
                fastworker.open_client(cp.url) as client,
            ):
                assert await client.call("add", 2, 3) == 5
                assert await client.call("async_add", 4, 5) == 9
                task_id = await client.delay("async_add", 1, 1)
                result = await client.result(task_id)
                with pytest.raises(fastworker.TaskFailed, match="ValueError: over the wire"):
                    await client.call("boom", "over the wire")
                stats = await client.stats()
    assert result.worker == sw.node_id[:8]
    assert result.status is TaskStatus.SUCCESS
    assert stats.completed == 3
    assert stats.failed == 1
    assert [w.id.split("/")[0] for w in stats.workers] == [sw.node_id[:8]]


async def test_websocket_cluster_runs_batches_cancels_and_redelivers() -> None:
    """The test cluster over real sockets: a batch, a cancel, a killed subworker's tasks re-run."""
    with trio.fail_after(30):
        async with open_cluster(
            TASKS, subworkers=2, concurrency=1, transport="websocket", local_concurrency=0
        ) as cluster:
            client = cluster.client
            assert cluster.url.startswith("ws://")
            ids = await client.delay_batch([("async_add", (i, i)) for i in range(20)])
            assert [(await client.result(i)).value for i in ids] == [2 * i for i in range(20)]

            victim_id = await client.delay("hold", "cancel-me")
            await sample_tasks.started("cancel-me").wait()
            assert await client.cancel(victim_id)
            await sample_tasks.finished("cancel-me").wait()
            assert (await client.result(victim_id)).status is TaskStatus.CANCELLED

            ids = await client.delay_batch([("hold", ("a",)), ("hold", ("b",))])
            await sample_tasks.started("a").wait()
            await sample_tasks.started("b").wait()
            killed = set(cluster.subworkers[0].executor._running)
            await cluster.kill_subworker(0)
            sample_tasks.gate("a").set()
            sample_tasks.gate("b").set()
            results = [await client.result(i) for i in ids]
    assert [r.value for r in results] == ["a", "b"]
    assert [r.attempts for r in results] == [2 if i in killed else 1 for i in ids]


async def test_client_and_subworker_find_the_control_plane_by_beacon() -> None:
    """url=None: client and subworker discover the control plane by UDP beacon on loopback."""
    port = free_udp_port()
    cluster_name = f"beacon-{uuid.uuid4().hex[:8]}"
    with trio.fail_after(20):
        async with fastworker.open_control_plane(
            tasks=TASKS,
            port=0,
            cluster=cluster_name,
            discovery=True,
            discovery_port=port,
            beacon_interval=0.2,
            local_concurrency=0,
        ) as cp:
            async with (
                fastworker.open_subworker(
                    tasks=TASKS, cluster=cluster_name, discovery_port=port, concurrency=1
                ) as sw,
                fastworker.open_client(cluster=cluster_name, discovery_port=port) as client,
            ):
                assert client.url == cp.url
                assert sw.url == cp.url
                result = await client.result(await client.delay("async_add", 20, 22))
    assert result.value == 42
    assert result.worker == sw.node_id[:8]


async def test_discovery_ignores_other_clusters() -> None:
    """A client looking for cluster B does not join cluster A's control plane."""
    port = free_udp_port()
    with trio.fail_after(20):
        async with fastworker.open_control_plane(
            tasks=TASKS,
            port=0,
            cluster=f"a-{uuid.uuid4().hex[:8]}",
            discovery=True,
            discovery_port=port,
            beacon_interval=0.1,
        ):
            with pytest.raises(fastworker.ConnectionFailed, match="no beacon heard"):
                async with fastworker.open_client(
                    cluster=f"b-{uuid.uuid4().hex[:8]}", discovery_port=port, connect_timeout=1
                ):
                    pass  # pragma: no cover


async def test_connecting_to_a_closed_port_raises_connection_failed() -> None:
    """open_client on a port nobody listens on raises ConnectionFailed after connect_timeout."""
    url = f"ws://127.0.0.1:{free_tcp_port()}"
    with trio.fail_after(10):
        start = trio.current_time()
        with pytest.raises(fastworker.ConnectionFailed, match="cannot reach the control plane"):
            async with fastworker.open_client(url, connect_timeout=1):
                pass  # pragma: no cover
        assert trio.current_time() - start < 5


async def test_a_wrong_secret_raises_authentication_failed() -> None:
    """A client or subworker with another secret (or none) is refused: AuthenticationFailed."""
    with trio.fail_after(20):
        async with fastworker.open_control_plane(
            tasks=TASKS, port=0, discovery=False, secret="right secret"
        ) as cp:
            with pytest.raises(fastworker.AuthenticationFailed):
                async with fastworker.open_client(cp.url, secret="wrong", connect_timeout=5):
                    pass  # pragma: no cover
            with pytest.raises(fastworker.AuthenticationFailed):
                async with fastworker.open_client(cp.url, connect_timeout=5):
                    pass  # pragma: no cover
            with pytest.raises(fastworker.AuthenticationFailed):
                async with fastworker.open_subworker(url=cp.url, tasks=TASKS, secret="wrong"):
                    pass  # pragma: no cover
            async with fastworker.open_client(cp.url, secret="right secret") as client:
                assert await client.call("async_add", 1, 2) == 3


async def test_a_secret_cluster_works_end_to_end_over_websockets() -> None:
    """With the right secret on every node, the test cluster runs tasks over websockets."""
    with trio.fail_after(20):
        async with open_cluster(
            TASKS, subworkers=1, transport="websocket", secret="s3cret", local_concurrency=0
        ) as cluster:
            assert await cluster.client.call("async_add", 2, 2) == 4
            async with cluster.open_client() as other:
                assert await other.call("add", 3, 3) == 6


async def test_binding_beyond_loopback_without_a_secret_is_refused() -> None:
    """open_control_plane(host="0.0.0.0") without a secret raises ConfigurationError."""
    with pytest.raises(fastworker.ConfigurationError, match="without a cluster secret"):
        async with fastworker.open_control_plane(tasks=TASKS, host="0.0.0.0", discovery=False):
            pass  # pragma: no cover
    with pytest.raises(fastworker.ConfigurationError, match="without a cluster secret"):
        async with fastworker.open_control_plane(tasks=TASKS, host="192.0.2.1", discovery=False):
            pass  # pragma: no cover
