"""The client process of ``fastworker bench --defaults`` (and of its huey comparison).

``python -m fastworker._bench_client SPEC_JSON`` runs the three measurements against a
running system and prints one JSON object on stdout. It runs in its own process so the
client's CPU and memory are not the system's (as for a user's application).

The spec: ``{"kind": "fastworker" | "huey", "url": ..., "n": ..., "chunk": ...,
"senders": ..., "seconds": ..., "warmup": ...}``; for huey, ``url`` is the Redis port
(the huey app is ``fastworker._bench_huey``).
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import threading
import time
from typing import Any


def percentiles(latencies: list[float]) -> dict[str, Any]:
    """``seq_calls``, ``seq_p50_ms`` and ``seq_p99_ms`` of round-trip latencies (s);
    sorts ``latencies`` in place."""
    latencies.sort()
    return {
        "seq_calls": len(latencies),
        "seq_p50_ms": statistics.median(latencies) * 1000,
        "seq_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


_CPU: dict[str, float] = {}
_LAST: list[Any] = []


def _mark(phase: str) -> None:
    """Tell the parent which phase starts (it reads the system's CPU time at each mark)."""
    now = time.process_time()
    if _LAST:
        _CPU[_LAST[0]] = now - _LAST[1]
    _LAST[:] = [phase, now]
    print(f"phase {phase}", file=sys.stderr, flush=True)


def run_fastworker(spec: dict[str, Any]) -> dict[str, Any]:
    """The measurements against a FastWorker system at ``spec["url"]``."""
    import trio

    from . import _bench_phases as phases
    from ._bench_common import ADD
    from ._open_client import open_client

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with open_client(
            spec["url"], cluster=spec["cluster"], connect_timeout=30.0
        ) as client:
            with trio.fail_after(60):
                await phases.wait_for_workers(client, spec.get("subworkers", 1))
            warm = spec["warmup"]
            await client.gather(await client.delay_batch([(ADD, (i, 0)) for i in range(warm)]))
            _mark("batched")
            out["batched"] = await phases.batched(client, spec["n"], spec["chunk"])
            _mark("pipelined")
            out["pipelined"] = await phases.pipelined(client, spec["n"], spec["senders"])
            _mark("sequential")
            out |= percentiles(await phases.sequential(client, spec["seconds"]))
            _mark("done")
        return out

    return trio.run(main)


def run_huey(spec: dict[str, Any]) -> dict[str, Any]:
    """The same measurements against huey + Redis (blocking client, threads for senders)."""
    from . import _bench_huey as hb

    add = hb.add
    n, chunk, senders = spec["n"], spec["chunk"], spec["senders"]
    out: dict[str, Any] = {}

    def check(results: list[Any], expected: list[int]) -> None:
        bad = [(r, e) for r, e in zip(results, expected, strict=True) if r != e]
        if bad:
            raise AssertionError(f"huey: {len(bad)} wrong results, e.g. {bad[:3]}")

    warm = [add(i, 0) for i in range(spec["warmup"])]
    check([r.get(blocking=True, timeout=60) for r in warm], list(range(spec["warmup"])))

    # Batched: huey has no batch submission; the nearest is enqueueing in chunks from one
    # caller, then collecting every result.
    _mark("batched")
    start = time.perf_counter()
    handles = []
    for base in range(0, n, chunk):
        handles += [add(i, 1) for i in range(base, min(n, base + chunk))]
    values = [h.get(blocking=True, timeout=120) for h in handles]
    out["batched"] = n / (time.perf_counter() - start)
    check(values, [i + 1 for i in range(n)])

    # Pipelined: `senders` threads enqueue one task at a time, then every result.
    _mark("pipelined")
    handles = [None] * n
    lock = threading.Lock()
    next_index = 0

    def sender() -> None:
        nonlocal next_index
        while True:
            with lock:
                index = next_index
                next_index += 1
            if index >= n:
                return
            handles[index] = add(index, 2)

    start = time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    values = [h.get(blocking=True, timeout=120) for h in handles]
    out["pipelined"] = n / (time.perf_counter() - start)
    check(values, [i + 2 for i in range(n)])

    _mark("sequential")
    latencies: list[float] = []
    deadline = time.perf_counter() + spec["seconds"]
    i = 0
    while time.perf_counter() < deadline or len(latencies) < 20:
        start = time.perf_counter()
        value = add(i, 3).get(blocking=True, timeout=60)
        latencies.append(time.perf_counter() - start)
        if value != i + 3:
            raise AssertionError(f"huey returned {value!r}, expected {i + 3}")
        i += 1
    out |= percentiles(latencies)
    _mark("done")
    return out


def main(argv: list[str]) -> int:
    """Run the spec given as the one argument; print the figures as JSON."""
    spec = json.loads(argv[0])
    out = run_huey(spec) if spec["kind"] == "huey" else run_fastworker(spec)
    out["client_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["client_cpu"] = _CPU
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
