"""Submit work to both services through one control plane, and print what happened.

Run from the repository root while the control plane and both services run (README).
"""

from __future__ import annotations

import sys

import trio

import fastworker


async def main(url: str) -> None:
    async with fastworker.open_client(url) as client:
        resized = await client.call("images.resize", "cat.png", 256)
        print("resize ->", resized["path"], resized["width"])
        print("archive ->", await client.call("images.archive", "cat.png"))
        print("invoice ->", await client.call("billing.invoice", "cus_42"))
        # The same key twice (a retried web request): one charge, one id.
        first = await client.delay("billing.charge", "cus_42", 1999, unique_key="order-1001")
        again = await client.delay("billing.charge", "cus_42", 1999, unique_key="order-1001")
        print("charge ids equal:", first == again)
        print("charge ->", (await client.result(first)).value["cents"])
        try:
            await client.delay("billing.refund", "cus_42")
        except fastworker.TaskNotRegistered as exc:
            print("refused:", str(exc).split(";")[0])


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765")
