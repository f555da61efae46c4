"""What ``bench`` and its modes share: the bench task module and a free loopback port.

Below ``bench`` and ``_bench_defaults`` both, so neither imports the other for these.
"""

from __future__ import annotations

import socket

BENCH_TASKS = "fastworker._bench_tasks"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
