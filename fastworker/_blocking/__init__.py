"""The blocking client for threads and sync code: ``fastworker.connect()``.

One BlockingClient serves every thread of a process (Django, Flask, scripts,
notebooks). Its trio client lives in the process's trio thread (``_portal``); each
method blocks the calling thread until the answer is there. A process forked after the
client was made (gunicorn ``--preload``) reconnects on its first call.

The story, file by file, as in ``_client``: ``_connection`` owns the link to the trio
thread (the portal, the held trio client, the lock shared by threads, a fresh start
after a fork); ``_results`` waits and asks (result, gather, get_result, status, cancel,
stats); ``_submitting`` sends tasks (submit, delay, delay_batch); ``_calls`` puts the
parts together as the BlockingClient and adds call(); ``_connect`` is
``fastworker.connect()``.
"""

from ._calls import BlockingClient
from ._connect import connect

__all__ = ["BlockingClient", "connect"]
