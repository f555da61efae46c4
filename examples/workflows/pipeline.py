"""A workflow, end to end: fetch -> parse -> fan out -> publish, in one process.

Run it from this directory (``python pipeline.py``) or from the repository root
(``python examples/workflows/pipeline.py``). It hosts a control plane (which runs the
tasks itself: no subworker needed), connects a client and shows:

1. a whole pipeline submitted as one workflow, one id, one result;
2. a failing workflow: the error is the failing member's, later members never run;
3. a workflow cancelled while a member runs.
"""

from __future__ import annotations

import argparse

import pipeline_tasks as t
import trio

import fastworker
from fastworker import chain, chord, group, sig


def pipeline(url: str) -> fastworker.Chain:
    """fetch(url) -> parse -> (thumbnails 64, thumbnails 256, summary) -> publish."""
    return chain(
        sig(t.fetch, url),
        sig(t.parse),
        chord(
            group(sig(t.thumbnails, 64), sig(t.thumbnails, 256), sig(t.summary)),
            sig(t.publish, channel="news"),
        ),
    )


async def main(discovery: bool) -> None:
    async with (
        fastworker.open_control_plane(local_concurrency=4, discovery=discovery) as cp,
        fastworker.open_client(cp.url) as client,
    ):
        with trio.fail_after(30):
            # 1. One id for the whole workflow; result() waits for its last member.
            flow_id = await client.delay(pipeline("https://example.com/trio-news"))
            result = await client.result(flow_id)
            print(f"published: {result.value}")
            print(f"workflow {flow_id}: {result.status}")

            # 2. A member that fails for good (after its retries) stops the chain.
            try:
                await client.call(pipeline("https://example.com/missing-page"))
            except fastworker.TaskFailed as exc:
                error = exc.result.error
                print(f"failed: {error.type}: {error.message}" if error else "failed")

            # 3. Cancel a workflow mid-run: the running member is interrupted, the
            #    members that never started end cancelled.
            flow_id = await client.delay(chain(sig(t.slow, 60), sig(t.summary)))
            running = fastworker.TaskStatus.RUNNING
            while await client.status(f"{flow_id}:1") is not running:  # noqa: ASYNC110
                await trio.sleep(0.01)
            print(f"cancel: {await client.cancel(flow_id)}")
            print(f"status: {await client.status(flow_id)}")
            never = await client.result(f"{flow_id}:2")
            print(f"the member after it: {never.status}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-discovery", action="store_true", help="no UDP beacon")
    trio.run(main, not parser.parse_args().no_discovery)
