"""The announcing side of discovery: a node's periodic beacon, and its answers to queries."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import trio

from actors._discovery_beacon import (
    MAX_DATAGRAM_SIZE,
    Beacon,
    DiscoveryConfig,
    decode_query,
    encode_beacon,
)
from actors._discovery_udp import (
    _broadcast_socket,
    _listen_address,
    _reusable_udp_socket,
    logger,
)


async def run_beacon(
    config: DiscoveryConfig,
    *,
    node_id: str,
    role: str,
    url: str,
    protocol_version: int,
    answer_queries: bool = True,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Broadcast this node's beacon every ``config.interval`` seconds until cancelled.

    With ``answer_queries`` it also listens on the discovery port (the loopback broadcast
    address when beacons stay on this host) and answers each query for its cluster and
    role at once with its beacon, so an asker needs not wait for the next period.
    Reports started once the sockets are ready, then sends the first beacon at once.
    Send errors are logged and retried next period; bad beacon fields raise
    DiscoveryError before start.
    """

    def beacon_bytes() -> bytes:
        beacon = Beacon(config.cluster, node_id, role, url, protocol_version, time.time())
        return encode_beacon(beacon, config.secret)

    beacon_bytes()
    target = (config.broadcast_address, config.port)
    with _broadcast_socket() as sock:
        async with trio.open_nursery() as nursery:
            if answer_queries:
                await nursery.start(_answer_queries, config, role, beacon_bytes)
            task_status.started()
            failing = False
            deadline = trio.current_time()
            while True:
                try:
                    await sock.sendto(beacon_bytes(), target)
                except OSError as exc:
                    log = logger.debug if failing else logger.warning
                    log("discovery beacon to %s:%d failed, will retry: %s", *target, exc)
                    failing = True
                else:
                    if failing:
                        logger.info("discovery beacon to %s:%d is being sent again", *target)
                    failing = False
                deadline = max(deadline + config.interval, trio.current_time())
                await trio.sleep_until(deadline)


async def _answer_queries(
    config: DiscoveryConfig,
    role: str,
    beacon_bytes: Callable[[], bytes],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    address = _listen_address(config)
    with _reusable_udp_socket() as sock:
        try:
            await sock.bind((address, config.port))
        except OSError as exc:
            logger.warning(
                "cannot listen for discovery queries on %s:%d (%s): askers will wait for "
                "the next beacon instead",
                address or "*",
                config.port,
                exc,
            )
            task_status.started()
            return
        task_status.started()
        # At most `burst` answers per second: a flood of queries costs little.
        burst, tokens, refilled = 200.0, 200.0, trio.current_time()
        while True:
            try:
                data, source = await sock.recvfrom(MAX_DATAGRAM_SIZE)
            except OSError as exc:
                logger.debug("discovery query receive failed: %s", exc)
                await trio.sleep(config.interval)
                continue
            query = decode_query(data)
            if query is None or query != (config.cluster, role):
                continue
            now = trio.current_time()
            tokens = min(burst, tokens + (now - refilled) * burst)
            refilled = now
            if tokens < 1:
                continue
            tokens -= 1
            with contextlib.suppress(OSError):
                await sock.sendto(beacon_bytes(), source)
