"""The huey app ``fastworker bench --compare huey`` runs: the same trivial ``add``.

Imported only when huey and redis are installed. The Redis port comes from
``FASTWORKER_BENCH_REDIS_PORT``. Results are waited for with huey's own blocking
notification (``notify_result=True``: a BLPOP, no polling), huey's fastest way.
"""

from __future__ import annotations

import os

from huey import RedisHuey  # type: ignore[import-not-found,import-untyped,unused-ignore]

huey = RedisHuey(
    "fastworker-bench",
    host="127.0.0.1",
    port=int(os.environ.get("FASTWORKER_BENCH_REDIS_PORT", "6379")),
    notify_result=True,
)


@huey.task()  # type: ignore[misc,unused-ignore]
def add(x: int, y: int) -> int:
    """Add two numbers."""
    return x + y
