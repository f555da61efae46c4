"""A plain script: submit, wait, fan out, in sync code.

Run (from the repository root, with a control plane running)::

    python -m examples.frameworks.script --url ws://127.0.0.1:8765
"""

from __future__ import annotations

import argparse

import fastworker

from .tasks import slugify, word_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=None, help="control plane (default: discover it)")
    url = parser.parse_args().url
    with fastworker.connect(url) as client:
        print(client.call(slugify, "Hello, FastWorker!"))  # one line: submit and wait
        ids = client.delay_batch([(word_count, (f"w{i} " * i,)) for i in range(1, 101)])
        results = client.gather(ids, timeout=60)
        print(sum(r.value["words"] for r in results))


if __name__ == "__main__":
    main()
