"""pytest plugin (entry point ``pytest11``): the ``fastworker_cluster`` fixture.

::

    @pytest.mark.fastworker(tasks=["myapp.tasks"], subworkers=2)
    async def test_add(fastworker_cluster, autojump_clock):
        assert await fastworker_cluster.client.call("add", 1, 2) == 3

Options come from the ``fastworker`` marker and go to ``fastworker.testing.open_cluster``.
Needs pytest-trio (the fixture is a trio fixture).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .testing import Cluster, open_cluster


def pytest_configure(config: Any) -> None:
    """Register the ``fastworker`` marker."""
    config.addinivalue_line(
        "markers",
        "fastworker(**options): options for the fastworker_cluster fixture "
        "(tasks=, subworkers=, concurrency=, transport=, and control plane options)",
    )


@pytest.fixture
async def fastworker_cluster(request: Any) -> AsyncIterator[Cluster]:
    """A whole FastWorker cluster in the test's trio run (see fastworker.testing)."""
    marker = request.node.get_closest_marker("fastworker")
    options = dict(marker.kwargs) if marker is not None else {}
    async with open_cluster(**options) as cluster:
        yield cluster
