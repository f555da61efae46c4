"""The trio-native client: submit tasks, await results, query, cancel, follow events.

The story of a call, file by file: ``_open`` connects (open_trio_client: what
``fastworker.open_client`` opens under trio; ``fastworker._open_client`` picks the
flavour, so this package never imports the asyncio or blocking clients built on it);
``_connection`` holds the shared state, registers with the control plane and
re-registers after a reconnect; ``_submitting`` packs and sends tasks (submit, delay,
delay_batch); ``_results`` waits for outcomes and asks the one-shot questions (result,
gather, get_result, status, cancel, stats); ``_events`` feeds events() streams;
``_calls`` puts the parts together as the Client and adds call(); ``_outcomes``
translates outcomes to TaskResult (and the errors they raise) and actor errors to
FastWorker's.
"""

from ._calls import Client
from ._connection import INBOX, ROLE, WATCH_CHUNK
from ._open import open_trio_client
from ._outcomes import raise_for, task_name, to_result
from ._types import BatchItem, ClientStatistics, P, PriorityLike, R, TaskRef, When

__all__ = [
    "INBOX",
    "ROLE",
    "WATCH_CHUNK",
    "BatchItem",
    "Client",
    "ClientStatistics",
    "P",
    "PriorityLike",
    "R",
    "TaskRef",
    "When",
    "open_trio_client",
    "raise_for",
    "task_name",
    "to_result",
]
